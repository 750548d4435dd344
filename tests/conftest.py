import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    # Throttle counters and rate-limit state must not leak between tests.
    cache.clear()
    yield


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser(username="admin", password="correct horse battery")


@pytest.fixture
def auth_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def identity(db):
    """A connected identity (an OAuth credential stored): one that can sync, send and browse."""
    from tests.factories import IdentityFactory, ProviderCredentialFactory

    identity = IdentityFactory(is_default=True)
    ProviderCredentialFactory(identity=identity)
    return identity


from tests.fakes.llm_server import _fake_llm_server, fake_llm  # noqa: E402,F401
from tests.fakes.reddit_server import _fake_reddit_server, fake_reddit  # noqa: E402,F401
from tests.fakes.feed_server import _fake_feed_server, fake_feeds  # noqa: E402,F401
from tests.fakes.notify_server import _fake_notify_server, fake_notify  # noqa: E402,F401
