"""Credential encryption: AES-256-GCM under the credentials key, versioned tokens."""

import base64
import os

import pytest

from rediska import crypto
from rediska.crypto import CredentialsKeyError


def test_it_round_trips_under_the_settings_key():
    token = crypto.encrypt("refresh-abc")
    assert token != "refresh-abc" and "refresh-abc" not in token
    assert crypto.decrypt(token) == "refresh-abc"


def test_each_encryption_uses_a_fresh_nonce():
    assert crypto.encrypt("same") != crypto.encrypt("same")


def test_the_token_names_its_version_and_key_fingerprint(settings):
    token = crypto.encrypt("x")
    version, fingerprint, _ = token.split(":")
    assert version == "v1"
    assert fingerprint == crypto.key_fingerprint(settings.CREDENTIALS_KEY)
    assert crypto.fingerprint_of(token) == fingerprint


def test_a_wrong_key_is_a_clear_error_never_garbage(settings):
    token = crypto.encrypt("secret-value")
    settings.CREDENTIALS_KEY = os.urandom(32)
    with pytest.raises(CredentialsKeyError, match="different credentials key") as caught:
        crypto.decrypt(token)
    assert "secret-value" not in str(caught.value)


def test_a_tampered_token_is_refused():
    version, fingerprint, body = crypto.encrypt("secret-value").split(":")
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 1
    with pytest.raises(CredentialsKeyError, match="damaged"):
        crypto.decrypt(f"{version}:{fingerprint}:{base64.urlsafe_b64encode(bytes(raw)).decode()}")


def test_context_binds_the_ciphertext_to_its_row():
    token = crypto.encrypt("secret-value", context="identity:1")
    assert crypto.decrypt(token, context="identity:1") == "secret-value"
    with pytest.raises(CredentialsKeyError):
        crypto.decrypt(token, context="identity:2")


@pytest.mark.parametrize("bad", ["", "plain text", "v9:abc:def", "v1:abc", "v1:abc:***"])
def test_malformed_tokens_are_refused_clearly(bad):
    with pytest.raises(CredentialsKeyError):
        crypto.decrypt(bad)


def test_an_explicit_key_overrides_the_settings_key():
    key = crypto.generate_key()
    token = crypto.encrypt("v", key=key)
    assert crypto.decrypt(token, key=key) == "v"
    with pytest.raises(CredentialsKeyError):
        crypto.decrypt(token)


def test_keys_are_parsed_from_their_text_form():
    key = crypto.generate_key()
    assert crypto.parse_key(crypto.format_key(key)) == key
    assert crypto.parse_key(" " + crypto.format_key(key) + "\n") == key


@pytest.mark.parametrize("bad", ["", "short", base64.urlsafe_b64encode(b"x" * 16).decode(), "!!!notbase64!!!"])
def test_bad_key_text_is_refused_clearly(bad):
    with pytest.raises(CredentialsKeyError, match="32 bytes"):
        crypto.parse_key(bad)
