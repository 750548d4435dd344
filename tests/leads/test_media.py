import hashlib

import pytest

from inbox.models import Attachment
from leads import media
from tests.leads.conftest import files_under, image_bytes, store_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def media_host(fake_reddit, attachments_dir):
    """The provider's own media-host check, configured by the fake_reddit fixture."""
    from rediska.providers import get_provider

    return get_provider("reddit").is_media_host


def test_it_stores_an_image_under_its_sha256_key_with_mime_and_dimensions(fake_reddit, media_host, attachments_dir):
    data = image_bytes("PNG", size=(7, 5))
    url = fake_reddit.add_image("/img/photo.png", data, "image/png")

    attachment = store_image(url, is_media_host=media_host)

    sha = hashlib.sha256(data).hexdigest()
    assert attachment.sha256 == sha
    assert attachment.storage_key == f"{sha[:2]}/{sha[2:4]}/{sha}.png"
    assert (attachment.mime_type, attachment.width_px, attachment.height_px) == ("image/png", 7, 5)
    assert attachment.size_bytes == len(data)
    assert (attachments_dir / attachment.storage_key).read_bytes() == data
    assert files_under(attachments_dir) == [attachments_dir / attachment.storage_key]


@pytest.mark.parametrize(("fmt", "mime", "ext"), [("JPEG", "image/jpeg", "jpg"), ("GIF", "image/gif", "gif"),
                                                  ("WEBP", "image/webp", "webp")])
def test_the_type_comes_from_the_bytes_not_the_servers_header(fake_reddit, media_host, fmt, mime, ext):
    url = fake_reddit.add_image(f"/img/x.{ext}", image_bytes(fmt), "application/octet-stream")

    attachment = store_image(url, is_media_host=media_host)

    assert attachment.mime_type == mime
    assert attachment.storage_key.endswith(f".{ext}")


def test_the_same_image_at_two_addresses_is_one_attachment_and_one_file(fake_reddit, media_host, attachments_dir):
    data = image_bytes()
    first = store_image(fake_reddit.add_image("/img/a.png", data), is_media_host=media_host)
    second = store_image(fake_reddit.add_image("/img/b.png", data), is_media_host=media_host)

    assert first.pk == second.pk
    assert Attachment.objects.count() == 1
    assert len(files_under(attachments_dir)) == 1


def test_a_download_writes_the_file_but_no_row_until_the_referencing_save(fake_reddit, media_host,
                                                                          attachments_dir):
    url = fake_reddit.add_image("/img/a.png", image_bytes())

    first = media.download_image(url, is_media_host=media_host)
    again = media.download_image(url, is_media_host=media_host)

    assert first == again and not Attachment.objects.exists()
    assert files_under(attachments_dir) == [attachments_dir / first.storage_key]


def test_a_known_hash_whose_file_went_missing_is_written_again(fake_reddit, media_host, attachments_dir):
    url = fake_reddit.add_image("/img/a.png", image_bytes())
    attachment = store_image(url, is_media_host=media_host)
    (attachments_dir / attachment.storage_key).unlink()

    again = store_image(url, is_media_host=media_host)

    assert again.pk == attachment.pk
    assert (attachments_dir / attachment.storage_key).is_file()


def test_it_refuses_a_host_that_is_not_a_media_host_without_asking_it(fake_reddit, media_host, attachments_dir):
    with pytest.raises(media.MediaError, match="not an allowed media host"):
        store_image("https://evil.example/cat.png", is_media_host=media_host)

    assert files_under(attachments_dir) == []
    assert Attachment.objects.count() == 0


def test_it_refuses_plain_http_unless_allowed(fake_reddit, media_host, settings, attachments_dir):
    settings.ATTACHMENT_ALLOW_HTTP = False
    url = fake_reddit.add_image("/img/a.png", image_bytes())

    with pytest.raises(media.MediaError, match="https"):
        store_image(url, is_media_host=media_host)
    assert fake_reddit.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "not a url", "https:///nohost.png"])
def test_it_refuses_urls_that_are_not_web_addresses(media_host, url):
    with pytest.raises(media.MediaError):
        store_image(url, is_media_host=media_host)


def test_it_follows_a_redirect_that_stays_on_media_hosts(fake_reddit, media_host):
    target = fake_reddit.add_image("/img/real.png", image_bytes())
    fake_reddit.inject(r"^/img/moved\.png$", status=302, headers={"Location": "/img/real.png"})

    attachment = store_image(fake_reddit.url + "/img/moved.png", is_media_host=media_host)

    assert attachment.mime_type == "image/png"
    assert [r.path for r in fake_reddit.requests] == ["/img/moved.png", "/img/real.png"]
    assert target.endswith("/img/real.png")


def test_it_refuses_a_redirect_to_another_host_and_writes_nothing(fake_reddit, media_host, attachments_dir):
    fake_reddit.inject(r"^/img/x\.png$", status=302, headers={"Location": "http://169.254.169.254/latest/x.png"})

    with pytest.raises(media.MediaError, match="redirected to a host that is not allowed"):
        store_image(fake_reddit.url + "/img/x.png", is_media_host=media_host)

    assert files_under(attachments_dir) == []
    assert Attachment.objects.count() == 0


def test_it_gives_up_after_too_many_redirects(fake_reddit, media_host):
    fake_reddit.inject(r"^/img/loop\.png$", status=302, headers={"Location": "/img/loop.png"}, count=None)

    with pytest.raises(media.MediaError, match="too many redirects"):
        store_image(fake_reddit.url + "/img/loop.png", is_media_host=media_host)


def test_it_refuses_an_oversized_image_and_leaves_no_partial_file(fake_reddit, media_host, settings,
                                                                 attachments_dir):
    data = image_bytes("BMP", size=(100, 100))
    settings.ATTACHMENT_MAX_BYTES = len(data) - 1
    url = fake_reddit.add_image("/img/big.bmp", data, "image/bmp")

    with pytest.raises(media.MediaError, match="larger than"):
        store_image(url, is_media_host=media_host)

    assert files_under(attachments_dir) == []
    assert Attachment.objects.count() == 0


def test_it_refuses_a_page_served_as_an_image(fake_reddit, media_host, attachments_dir):
    url = fake_reddit.add_image("/img/fake.png", b"<html><script>alert(1)</script></html>", "image/png")

    with pytest.raises(media.MediaError, match="not an image"):
        store_image(url, is_media_host=media_host)

    assert files_under(attachments_dir) == []


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json", "video/mp4"])
def test_it_refuses_a_declared_non_image_type_before_reading_it(fake_reddit, media_host, attachments_dir,
                                                                content_type):
    url = fake_reddit.add_image("/img/x.png", image_bytes(), content_type)

    with pytest.raises(media.MediaError, match="not an image"):
        store_image(url, is_media_host=media_host)
    assert files_under(attachments_dir) == [] and Attachment.objects.count() == 0


def test_it_refuses_image_formats_outside_the_allowed_list(fake_reddit, media_host, attachments_dir):
    url = fake_reddit.add_image("/img/a.tiff", image_bytes("TIFF"), "image/tiff")

    with pytest.raises(media.MediaError, match="not an image type we keep"):
        store_image(url, is_media_host=media_host)
    assert files_under(attachments_dir) == []


def test_it_refuses_images_with_too_many_pixels(fake_reddit, media_host, settings, attachments_dir):
    settings.ATTACHMENT_MAX_PIXELS = 100
    url = fake_reddit.add_image("/img/wide.png", image_bytes(size=(20, 10)))

    with pytest.raises(media.MediaError, match="too many pixels"):
        store_image(url, is_media_host=media_host)
    assert files_under(attachments_dir) == []


def test_an_error_status_is_a_clear_refusal(fake_reddit, media_host, attachments_dir):
    fake_reddit.inject(r"^/img/missing", status=404)
    with pytest.raises(media.MediaError, match="HTTP 404"):
        store_image(fake_reddit.url + "/img/missing.png", is_media_host=media_host)
    assert files_under(attachments_dir) == []


@pytest.mark.parametrize("path", ["/img/..%2F..%2F..%2Fevil.png", "/img/%00bad.png", "/img/a.png%3Brm%20-rf",
                                  "/img/" + "x" * 300 + ".png"])
def test_hostile_remote_names_never_shape_the_stored_path(fake_reddit, media_host, attachments_dir, tmp_path,
                                                          path):
    data = image_bytes()
    fake_reddit.add_image(path, data)

    attachment = store_image(fake_reddit.url + path, is_media_host=media_host)

    sha = hashlib.sha256(data).hexdigest()
    assert attachment.storage_key == f"{sha[:2]}/{sha[2:4]}/{sha}.png"
    assert [p.relative_to(tmp_path) for p in files_under(tmp_path)] == [
        (attachments_dir / attachment.storage_key).relative_to(tmp_path)
    ]


def test_path_of_refuses_keys_that_escape_the_attachments_folder(attachments_dir):
    assert media.path_of("ab/cd/abcd.png") == attachments_dir / "ab/cd/abcd.png"
    for key in ("../secret", "/etc/passwd", "ab/../../x"):
        with pytest.raises(media.MediaError):
            media.path_of(key)
