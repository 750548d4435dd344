import pytest

from rediska.providers.base import RemoteAccount
from tests.factories import ProviderFactory


@pytest.fixture
def connect(fake_reddit, db):
    """Connect a fake-server user as an identity (token stored encrypted, as the app does)."""
    from identities.services import connect_identity

    ProviderFactory()

    def _connect(username: str = "alice"):
        token = fake_reddit.issue_refresh_token(username)
        return connect_identity(provider_id="reddit", refresh_token=token, account=RemoteAccount(username=username))

    return _connect


@pytest.fixture
def alice(connect):
    return connect("alice")
