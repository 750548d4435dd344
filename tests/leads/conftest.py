import io

import pytest
from PIL import Image


@pytest.fixture
def attachments_dir(settings, tmp_path):
    """A fresh ATTACHMENTS_PATH per test; plain http allowed for the fake server's images."""
    root = tmp_path / "attachments"
    root.mkdir()
    settings.ATTACHMENTS_PATH = root
    settings.ATTACHMENT_ALLOW_HTTP = True
    return root


def image_bytes(fmt: str = "PNG", size=(3, 2), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def files_under(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


def connect(fake_reddit, username: str, **kwargs):
    """An identity connected through the identities service, holding a token the fake accepts."""
    from identities.services import connect_identity
    from rediska.providers.base import RemoteAccount

    return connect_identity(provider_id="reddit", refresh_token=fake_reddit.issue_refresh_token(username),
                            account=RemoteAccount(username=username), **kwargs)


@pytest.fixture
def scout(fake_reddit, db):
    """The default identity, connected: `session_for(scout)` talks to the fake server."""
    return connect(fake_reddit, "scout")


def store_image(url: str, *, is_media_host):
    """Download an image and record its attachment the way a profile-items page does."""
    from django.db import transaction

    from inbox.models import Attachment
    from leads import media

    image = media.download_image(url, is_media_host=is_media_host)
    with media.hash_locks([image.sha256]), transaction.atomic():
        return Attachment.objects.get(pk=media.attachments_for([image])[image.sha256])
