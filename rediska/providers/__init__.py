from .base import Provider, ProviderSession  # noqa: F401
from .registry import all_providers, get_provider, provider_ids  # noqa: F401
