"""Image downloads into ATTACHMENTS_PATH: safe, capped, content-addressed.

Only web addresses on the provider's media hosts are fetched; every redirect
hop is checked again (nothing is followed to another host).  The body is
streamed to a temporary file inside ATTACHMENTS_PATH with a size cap (a
declared non-image type or oversized length is refused before reading), its
type is sniffed with Pillow (a declared image type is not trusted), and it is
renamed into `<sha[:2]>/<sha[2:4]>/<sha>.<ext>`: a final name only ever holds
a complete file, and no part of the remote name reaches the disk.  One
`attachments` row per sha256, written only in the transaction that saves what
references it (so a failed save leaves an unreferenced file, reused by the next
download of the same bytes, never an unreferenced row).
"""

from __future__ import annotations

import functools
import hashlib
import os
import ssl
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache
from PIL import Image, UnidentifiedImageError

from inbox.models import Attachment
from rediska.fields import Visibility

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
MAX_REDIRECTS = 5
TIMEOUT_SECONDS = 20.0
CHUNK = 64 * 1024
# Pillow format -> (mime type, file extension).  Anything else is refused.
FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}


# Types some media hosts send for any file: the bytes decide.
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream"}


class MediaError(Exception):
    """A download refused or failed; `user_message` says why in plain words."""

    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


def root() -> Path:
    return Path(settings.ATTACHMENTS_PATH)


def path_of(storage_key: str) -> Path:
    """The file of a storage key, refusing any key that would leave ATTACHMENTS_PATH."""
    base = root().resolve()
    target = (base / storage_key).resolve()
    if os.path.isabs(storage_key) or not target.is_relative_to(base) or target == base:
        raise MediaError("That attachment key points outside the attachments folder.")
    return target


def _max_bytes() -> int:
    return int(getattr(settings, "ATTACHMENT_MAX_BYTES", DEFAULT_MAX_BYTES))


def _check_url(url: str, is_media_host: Callable[[str], bool], *, hop: bool = False) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise MediaError("The image address is not a valid web address.") from None
    allowed_schemes = {"https", "http"} if getattr(settings, "ATTACHMENT_ALLOW_HTTP", False) else {"https"}
    if parts.scheme not in {"https", "http"} or not host:
        raise MediaError("The image address is not a valid web address.")
    if parts.scheme not in allowed_schemes:
        raise MediaError("Images are only downloaded over https.")
    if not is_media_host(host):
        if hop:
            raise MediaError(f"The image was redirected to a host that is not allowed ({host}).")
        raise MediaError(f"{host} is not an allowed media host.")


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms: once per process, not once per image.
    return httpx.create_ssl_context()


def _download(url: str, is_media_host: Callable[[str], bool], folder: Path) -> tuple[Path, str, int]:
    """Stream `url` into a temporary file in `folder`; returns (path, sha256, size)."""
    limit = _max_bytes()
    _check_url(url, is_media_host)
    with httpx.Client(follow_redirects=False, timeout=TIMEOUT_SECONDS, verify=_tls(),
                      headers={"User-Agent": "rediska-media/0.1"}) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("Location", ""))
                        _check_url(url, is_media_host, hop=True)
                        continue
                    if response.status_code != 200:
                        raise MediaError(f"The image could not be downloaded (HTTP {response.status_code}).")
                    _check_headers(response, limit)
                    return _write_capped(response, folder, limit)
            except httpx.HTTPError as exc:
                raise MediaError(f"The image could not be downloaded ({type(exc).__name__}).") from None
    raise MediaError("The image address led to too many redirects.")


def _check_headers(response: httpx.Response, limit: int) -> None:
    """Refuse what the server itself declares too big or not an image, before reading the body.

    The bytes are still sniffed and capped: a missing or generic type
    (application/octet-stream) passes here.
    """
    declared = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if declared and not declared.startswith("image/") and declared not in GENERIC_TYPES:
        raise MediaError(f"The file is not an image (the server says {declared[:60]}).")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise MediaError(f"The image is larger than the {limit // 1024} KiB limit.")


def _write_capped(response: httpx.Response, folder: Path, limit: int) -> tuple[Path, str, int]:
    fd, name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
    path = Path(name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in response.iter_bytes(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise MediaError(f"The image is larger than the {limit // 1024} KiB limit.")
                digest.update(chunk)
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def _sniff(path: Path) -> tuple[str, str, int, int]:
    """(mime, ext, width, height) read from the bytes; refuses non-images and pixel bombs."""
    max_pixels = int(getattr(settings, "ATTACHMENT_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                fmt, (width, height) = image.format, image.size
                if width * height > max_pixels:
                    raise MediaError(f"The image has too many pixels ({width}×{height}).")
                if fmt not in FORMATS:
                    raise MediaError(f"The file is {fmt}, not an image type we keep (PNG, JPEG, GIF, WebP).")
                image.verify()
    except MediaError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaError("The file is not an image (or is a damaged one).") from None
    except (OSError, SyntaxError, ValueError):
        raise MediaError("The file is not an image (or is a damaged one).") from None
    mime, ext = FORMATS[fmt]
    return mime, ext, width, height


@contextmanager
def _hash_lock(sha: str):
    """Serialise writers of one hash across processes (one row per hash)."""
    key = f"leads:media:{sha}"
    deadline = time.monotonic() + 30
    while not cache.add(key, 1, timeout=60):
        if time.monotonic() > deadline:
            break  # a crashed holder: its entry expires; go ahead rather than hang
        time.sleep(0.05)
    try:
        yield
    finally:
        cache.delete(key)


@contextmanager
def hash_locks(shas: Iterable[str]):
    """Hold the locks of several hashes (in sorted order, so two holders never wait on each other)."""
    with ExitStack() as stack:
        for sha in sorted(set(shas)):
            stack.enter_context(_hash_lock(sha))
        yield


@dataclass(frozen=True)
class Downloaded:
    """An image file in place under ATTACHMENTS_PATH, not yet recorded in `attachments`."""

    storage_key: str
    sha256: str
    mime_type: str
    size_bytes: int
    width_px: int
    height_px: int


def download_image(url: str, *, is_media_host: Callable[[str], bool]) -> Downloaded:
    """Download one image into its content-addressed file; writes no row.

    Bytes already on disk are reused (the file of a known hash is only written
    again if it went missing).  Raises MediaError with a plain reason; on any
    refusal nothing is left on disk.
    """
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    temp, sha, size = _download(url, is_media_host, base)
    try:
        mime, ext, width, height = _sniff(temp)
        with _hash_lock(sha):
            known = Attachment.objects.filter(sha256=sha).order_by("id").values_list("storage_key", flat=True).first()
            key = known or f"{sha[:2]}/{sha[2:4]}/{sha}.{ext}"
            final = path_of(key)
            if not final.is_file():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, final)
        return Downloaded(storage_key=key, sha256=sha, mime_type=mime, size_bytes=size, width_px=width,
                          height_px=height)
    finally:
        temp.unlink(missing_ok=True)


def attachments_for(images: Iterable[Downloaded]) -> dict[str, int]:
    """sha256 -> `attachments` id of these images, creating the rows of new hashes.

    Call it inside the transaction that saves what references the images, holding
    `hash_locks` of their hashes until it commits: a failed save then leaves no row
    behind, and two writers never both create a row for one hash.
    """
    by_sha = {image.sha256: image for image in images}
    ids: dict[str, int] = {}
    for sha, pk in Attachment.objects.filter(sha256__in=list(by_sha)).order_by("id").values_list("sha256", "id"):
        ids.setdefault(sha, pk)
    for sha, image in by_sha.items():
        if sha not in ids:
            ids[sha] = Attachment.objects.create(
                storage_key=image.storage_key, sha256=sha, mime_type=image.mime_type, size_bytes=image.size_bytes,
                width_px=image.width_px, height_px=image.height_px, remote_visibility=Visibility.VISIBLE,
            ).pk
    return ids
