import pytest

from rediska.providers.base import RemoteAccount
from tests.factories import ProviderFactory


@pytest.fixture
def alice(fake_reddit, db):
    """An identity connected to the fake provider server (token stored encrypted, as the app does)."""
    from identities.services import connect_identity

    ProviderFactory()
    token = fake_reddit.issue_refresh_token("alice")
    return connect_identity(provider_id="reddit", refresh_token=token, account=RemoteAccount(username="alice"))
