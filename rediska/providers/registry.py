"""Provider registry: every subpackage of `rediska.providers` that has a
`provider` module with a `build_provider()` factory is a provider.

Discovery keeps provider names out of the core: adding a network means adding
a package here, nothing else.  Built lazily so the core never imports a
provider's client library unless it is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from .base import Provider


class UnknownProvider(LookupError):
    pass


@cache
def _factories() -> dict[str, str]:
    found = {}
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.ispkg and (Path(__file__).parent / mod.name / "provider.py").exists():
            found[mod.name] = f"{__package__}.{mod.name}.provider"
    return found


def provider_ids() -> list[str]:
    return sorted(_factories())


@cache
def get_provider(provider_id: str) -> Provider:
    try:
        module = _factories()[provider_id]
    except KeyError:
        raise UnknownProvider(f"Unknown provider: {provider_id!r}") from None
    provider = importlib.import_module(module).build_provider()
    assert provider.provider_id == provider_id, "package name must equal provider_id"
    return provider


def all_providers() -> list[Provider]:
    return [get_provider(pid) for pid in provider_ids()]
