"""Encryption of stored secrets (provider refresh tokens): AES-256-GCM.

Token format: `v1:<key fingerprint>:<urlsafe-base64(nonce || ciphertext+tag)>`.
The fingerprint names the key that encrypted it, so decrypting under another
key is a clear `CredentialsKeyError` rather than an authentication failure
nobody can explain; the GCM tag refuses anything tampered with.  `context`
(associated data) binds a ciphertext to its row, so a ciphertext copied onto
another identity does not decrypt.

The key is `settings.CREDENTIALS_KEY` (32 raw bytes, from `ENCRYPTION_KEY` or a
generated key file); `manage.py rotate_credentials_key` re-encrypts under a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

VERSION = "v1"
NONCE_BYTES = 12


class CredentialsKeyError(Exception):
    """The credentials key cannot decrypt this secret (wrong key, damaged or not a token)."""


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def format_key(key: bytes) -> str:
    """The key as it is written in ENCRYPTION_KEY / the key file."""
    return base64.urlsafe_b64encode(key).decode()


def parse_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise CredentialsKeyError("A credentials key is 32 bytes, urlsafe-base64 encoded (44 characters).")
    return key


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key (a hash; it reveals nothing of the key)."""
    return hashlib.sha256(b"rediska-credentials-key\x00" + key).hexdigest()[:16]


def _key(key: bytes | None) -> bytes:
    key = settings.CREDENTIALS_KEY if key is None else key
    if len(key) != 32:
        raise CredentialsKeyError("The credentials key must be 32 bytes.")
    return key


def encrypt(plaintext: str, *, key: bytes | None = None, context: str = "") -> str:
    key = _key(key)
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode() or None)
    return f"{VERSION}:{key_fingerprint(key)}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def fingerprint_of(token: str) -> str:
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != VERSION:
        raise CredentialsKeyError("This is not an encrypted credential Rediska can read.")
    return parts[1]


def decrypt(token: str, *, key: bytes | None = None, context: str = "") -> str:
    key = _key(key)
    fingerprint = fingerprint_of(token)
    if fingerprint != key_fingerprint(key):
        raise CredentialsKeyError(
            "This credential was encrypted under a different credentials key "
            f"(key {fingerprint}, current key {key_fingerprint(key)}): restore the old ENCRYPTION_KEY "
            "or reconnect the identity."
        )
    try:
        raw = base64.urlsafe_b64decode(token.split(":", 2)[2].encode())
        if len(raw) <= NONCE_BYTES:
            raise ValueError
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode() or None)
    except (binascii.Error, ValueError, InvalidTag):
        raise CredentialsKeyError("This credential is damaged and cannot be decrypted: reconnect the identity.") from None
    return plain.decode()
