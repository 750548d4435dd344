"""manage.py identity_add and rotate_credentials_key."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from identities import services
from identities.models import Identity, ProviderCredential
from rediska import crypto
from rediska.models import AuditLog
from rediska.providers.base import RemoteAccount

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def add(*args, stdin: str) -> str:
    out = io.StringIO()
    call_command("identity_add", *args, stdin=io.StringIO(stdin), stdout=out)
    return out.getvalue()


def rotate(*args, stdin: str = "") -> str:
    out = io.StringIO()
    call_command("rotate_credentials_key", *args, stdin=io.StringIO(stdin), stdout=out)
    return out.getvalue()


# --- identity_add -------------------------------------------------------------------
def test_identity_add_verifies_the_token_and_creates_the_identity(fake_reddit):
    token = fake_reddit.issue_refresh_token("Alice")
    out = add("--provider", "reddit", "--username", "alice", "--display-name", "Alice hikes", stdin=token + "\n")
    identity = Identity.objects.get()
    assert (identity.external_username, identity.display_name, identity.is_default) == ("Alice", "Alice hikes", True)
    assert "created" in out and token not in out
    assert services.session_for(identity).whoami().username == "Alice"
    assert [r.path for r in fake_reddit.requests][-1] == "/api/v1/me"


def test_identity_add_refuses_a_token_of_someone_else(fake_reddit):
    with pytest.raises(CommandError, match="belongs to bob, not alice"):
        add("--provider", "reddit", "--username", "alice", stdin=fake_reddit.issue_refresh_token("bob"))
    assert not Identity.objects.exists()


def test_identity_add_refuses_a_revoked_token(fake_reddit):
    token = fake_reddit.issue_refresh_token("alice")
    fake_reddit.revoke_refresh_token(token)
    with pytest.raises(CommandError, match="refused"):
        add("--provider", "reddit", "--username", "alice", stdin=token)
    assert not Identity.objects.exists()


def test_identity_add_with_a_bad_token_leaves_the_existing_identity_untouched(fake_reddit):
    add("--provider", "reddit", "--username", "alice", "--display-name", "First", stdin=fake_reddit.issue_refresh_token("alice"))
    before = list(Identity.objects.values()), ProviderCredential.objects.get().secret_encrypted
    revoked = fake_reddit.issue_refresh_token("alice")
    fake_reddit.revoke_refresh_token(revoked)
    with pytest.raises(CommandError, match="refused"):
        add("--provider", "reddit", "--username", "alice", stdin=revoked)
    with pytest.raises(CommandError, match="belongs to bob, not alice"):
        add("--provider", "reddit", "--username", "alice", stdin=fake_reddit.issue_refresh_token("bob"))
    assert (list(Identity.objects.values()), ProviderCredential.objects.get().secret_encrypted) == before


def test_identity_add_refuses_a_duplicate_and_leaves_it_untouched(fake_reddit):
    add("--provider", "reddit", "--username", "alice", "--display-name", "First", stdin=fake_reddit.issue_refresh_token("alice"))
    before = ProviderCredential.objects.get().secret_encrypted
    with pytest.raises(CommandError, match="already connected"):
        add("--provider", "reddit", "--username", "alice", "--display-name", "Second",
            stdin=fake_reddit.issue_refresh_token("alice"))
    assert Identity.objects.get().display_name == "First"
    assert ProviderCredential.objects.get().secret_encrypted == before


@pytest.mark.parametrize("args,stdin,message", [
    (["--provider", "reddit", "--username", "alice"], "", "no refresh token"),
    (["--provider", "myspace", "--username", "alice"], "token", "Unknown provider 'myspace'"),
    (["--provider", "reddit", "--username", "two words"], "token", "not a username"),
])
def test_identity_add_bad_input_is_one_clear_line(fake_reddit, args, stdin, message):
    with pytest.raises(CommandError, match=message):
        add(*args, stdin=stdin)
    assert not Identity.objects.exists()


def test_identity_add_needs_a_configured_provider(fake_reddit, settings):
    settings.PROVIDER_REDDIT_CLIENT_SECRET = ""
    with pytest.raises(CommandError, match="PROVIDER_REDDIT_CLIENT_SECRET"):
        add("--provider", "reddit", "--username", "alice", stdin="token")


def test_identity_add_fails_with_exit_code_and_one_stderr_line():
    env = {**os.environ, "DATA_DIR": str(Path(os.environ["DATA_DIR"]) / "cli"), "PROVIDER_REDDIT_CLIENT_ID": ""}
    run = subprocess.run([sys.executable, "manage.py", "identity_add", "--provider", "nope", "--username", "x"],
                         input="token", capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == ["CommandError: Unknown provider 'nope' (known: reddit)."]


# --- rotate_credentials_key ---------------------------------------------------------------
def connect(fake_reddit, username):
    token = fake_reddit.issue_refresh_token(username)
    identity = services.connect_identity(provider_id="reddit", refresh_token=token,
                                         account=RemoteAccount(username=username))
    return identity, token


def test_rotation_re_encrypts_every_credential_under_the_new_key(fake_reddit, settings):
    (alice, alice_token), (bob, bob_token) = connect(fake_reddit, "alice"), connect(fake_reddit, "bob")
    new_key = crypto.generate_key()
    out = rotate(stdin=crypto.format_key(new_key) + "\n")
    assert out.count(crypto.format_key(new_key)) == 1
    assert alice_token not in out and "2 credentials" in out
    settings.CREDENTIALS_KEY = new_key
    assert services.refresh_token_of(alice) == alice_token and services.refresh_token_of(bob) == bob_token
    assert all(c.rotated_at for c in ProviderCredential.objects.all())
    row = AuditLog.objects.get(action_type="credentials.rotate_key")
    assert crypto.format_key(new_key) not in repr((row.request_json, row.response_json))


def test_rotation_can_generate_the_key_and_writes_the_key_file(fake_reddit, settings):
    connect(fake_reddit, "alice")
    out = rotate("--generate")
    key_file = Path(settings.DATA_DIR) / "credentials.key"
    new_key = crypto.parse_key(key_file.read_text())
    assert crypto.format_key(new_key) in out and new_key != settings.CREDENTIALS_KEY
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    settings.CREDENTIALS_KEY = new_key
    assert services.refresh_token_of(Identity.objects.get())


def test_rotation_with_a_wrong_current_key_changes_nothing(fake_reddit, settings):
    identity, token = connect(fake_reddit, "alice")
    before = ProviderCredential.objects.get().secret_encrypted
    real_key = settings.CREDENTIALS_KEY
    settings.CREDENTIALS_KEY = crypto.generate_key()
    with pytest.raises(CommandError, match="1 credential.*cannot be decrypted.*nothing was changed"):
        rotate("--generate")
    assert ProviderCredential.objects.get().secret_encrypted == before
    settings.CREDENTIALS_KEY = real_key
    assert services.refresh_token_of(identity) == token


@pytest.mark.parametrize("stdin,message", [("", "32 bytes"), ("not-a-key", "32 bytes")])
def test_rotation_refuses_a_bad_new_key(fake_reddit, stdin, message):
    connect(fake_reddit, "alice")
    before = ProviderCredential.objects.get().secret_encrypted
    with pytest.raises(CommandError, match=message):
        rotate(stdin=stdin)
    assert ProviderCredential.objects.get().secret_encrypted == before


def test_rotation_refuses_the_current_key(settings):
    with pytest.raises(CommandError, match="already"):
        rotate(stdin=crypto.format_key(settings.CREDENTIALS_KEY))
