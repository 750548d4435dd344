"""Identity rules (spec §0.1, §9)."""

from __future__ import annotations

from rediska.providers import all_providers

from .models import Provider


def sync_providers() -> None:
    """Make the providers table mirror the provider registry."""
    for provider in all_providers():
        Provider.objects.update_or_create(
            provider_id=provider.provider_id, defaults={"display_name": provider.display_name}
        )
