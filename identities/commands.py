"""What management commands share about identities."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db.models import Q

from .models import Identity


def find_identity(name: str) -> Identity:
    """The active identity with this username or display name, or one clear CommandError."""
    found = list(Identity.objects.filter(Q(external_username__iexact=name) | Q(display_name__iexact=name))[:2])
    if not found:
        raise CommandError(f"No identity is called {name!r}.")
    if len(found) > 1:
        raise CommandError(f"Several identities match {name!r}: use the username.")
    if not found[0].is_active:
        raise CommandError(f"{found[0].display_name} is deactivated: reconnect it first.")
    return found[0]
