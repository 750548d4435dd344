"""The identity's own posts and comments from a data export, kept as profile items of its own account.

The person page of the identity's own account then shows them (and search
finds them) like any fetched profile: one place for everyone's public history.
"""

from __future__ import annotations

from identities.models import Identity
from inbox.accounts import upsert_accounts
from rediska.providers.base import RemoteProfileItem

from .services import store_profile_items


def store_own_items(identity: Identity, items: list[RemoteProfileItem]) -> int:
    """Upsert these items on the identity's own account; returns how many were new."""
    account = upsert_accounts(identity.provider_id, {identity.external_username: None})[identity.external_username]
    created, _ = store_profile_items(account, items, {})
    return created
