"""Identity rules (spec §0.1, §9), credentials, provider sessions, do-not-contact.

Rules kept here and nowhere else:
- the first active identity of a provider becomes its default; a provider has
  at most one default, and exactly one while it has an active identity;
- setting a default unsets the old one in the same transaction (the provider
  row is locked, so concurrent changes queue up);
- deactivating the default hands the role to the oldest other active identity;
- identities are never deleted (conversations keep theirs forever) and a
  deactivated one stays readable; reconnecting reactivates it;
- refresh tokens and feed tokens are stored only encrypted (`rediska.crypto`,
  bound to their row), never logged, shown only masked;
- a session is OAuth when the identity has a refresh token (and the app is
  configured), else its feed token, else there is none;
- what an identity can do comes from `capabilities_for` (the provider decides
  from how it is connected); callers ask it, never the kind of connection.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from rediska import audit, crypto
from rediska.providers import all_providers, get_provider
from rediska.providers.base import Capabilities, MessagePage, PostPage, ProfileItemPage, ProviderSession
from rediska.providers.base import RemoteAccount, RemotePost, SentMessage
from rediska.providers.errors import AuthError, ProviderError

from .models import FEED_TOKEN, REFRESH_TOKEN, VOICE_KEYS, DoNotContact, Identity, Provider, ProviderCredential

log = logging.getLogger(__name__)
MAX_USERNAME = 128


class IdentityError(Exception):
    """A rule was broken; `user_message` says which, in plain words."""

    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


class DoNotContactError(IdentityError):
    """The person is on the do-not-contact list: nothing may be sent or drafted to them."""


def sync_providers() -> None:
    """Make the providers table mirror the provider registry."""
    for provider in all_providers():
        Provider.objects.update_or_create(
            provider_id=provider.provider_id, defaults={"display_name": provider.display_name}
        )


def _provider_row(provider_id: str) -> Provider:
    provider = get_provider(provider_id)
    row, _ = Provider.objects.get_or_create(provider_id=provider_id,
                                            defaults={"display_name": provider.display_name})
    return row


def _lock_provider(provider_id: str) -> None:
    # Every change to a provider's defaults takes this row lock first.
    Provider.objects.select_for_update().filter(pk=provider_id).first()


def _copy_into(stale: Identity, fresh: Identity) -> Identity:
    """Let the caller's instance see the change too (it was re-read under a lock)."""
    for field in Identity._meta.concrete_fields:
        setattr(stale, field.attname, getattr(fresh, field.attname))
    return stale


def clean_username(username: str) -> str:
    name = (username or "").strip()
    if not name or len(name) > MAX_USERNAME or any(c.isspace() for c in name):
        raise IdentityError(f"{username!r} is not a username (no spaces, at most {MAX_USERNAME} characters).")
    return name


# --------------------------------------------------------------------------- connecting
def connect_identity(*, provider_id: str, refresh_token: str, account: RemoteAccount,
                     display_name: str | None = None, identity: Identity | None = None,
                     actor: str = "user") -> Identity:
    """Create an identity for `account`, or reconnect one (new token, reactivated, flag cleared).

    `identity` set: reconnect that identity; the account must be the same person.
    Otherwise an existing identity of the same account is reconnected only when it
    is deactivated or waiting for a reconnection; a healthy one is a duplicate.
    """
    username = clean_username(account.username)
    display_name = (display_name or "").strip()[:128] or username
    with transaction.atomic():
        provider = _provider_row(provider_id)
        _lock_provider(provider_id)
        existing = Identity.objects.select_for_update().filter(
            provider_id=provider_id, external_username__iexact=username).first()
        if identity is not None and (existing is None or existing.pk != identity.pk):
            raise IdentityError(f"You signed in as {username}, but this identity is "
                                f"{identity.external_username}: sign in with that account to reconnect it.")
        # An identity created from a data export gets its first access here: same row, same conversations.
        if identity is None and existing is not None and existing.is_active and not existing.needs_reconnect \
                and not existing.is_archive_only:
            raise IdentityError(f"{username} is already connected as the identity “{existing.display_name}”.")
        created = existing is None
        has_default = Identity.objects.filter(provider_id=provider_id, is_active=True, is_default=True).exists()
        if created:
            try:
                with transaction.atomic():
                    existing = Identity.objects.create(
                        provider=provider, external_username=username, external_user_id=account.user_id,
                        display_name=display_name, is_default=not has_default, is_active=True,
                        **_account_facts(account))
            except IntegrityError:
                raise IdentityError(f"{username} is already connected.") from None
        else:
            existing.is_active = True
            existing.is_default = existing.is_default or not has_default
            existing.needs_reconnect_at = None
            existing.last_auth_error = None
            existing.external_user_id = account.user_id or existing.external_user_id
            facts = _account_facts(account)
            for name, value in facts.items():
                setattr(existing, name, value)
            existing.save(update_fields=["is_active", "is_default", "needs_reconnect_at", "last_auth_error",
                                         "external_user_id", "updated_at", *facts])
        _store_refresh_token(existing, refresh_token)
        audit.record("identity.connect" if created else "identity.reconnect", actor=actor, provider_id=provider_id,
                     identity_id=existing.pk, entity=existing,
                     request={"username": username},
                     response={"identity_id": existing.pk, "is_default": existing.is_default})
    return existing


def _karma(account: RemoteAccount) -> int | None:
    about = account.about or {}
    if isinstance(about.get("total_karma"), int):
        return about["total_karma"]
    parts = [about.get(k) for k in ("link_karma", "comment_karma") if isinstance(about.get(k), int)]
    return sum(parts) if parts else None


def _account_facts(account: RemoteAccount) -> dict:
    """Age and karma as whoami tells them (pacing is stricter for young accounts); only what is known."""
    facts = {"account_checked_at": timezone.now()}
    if account.created_at is not None:
        facts["account_created_at"] = account.created_at
    if _karma(account) is not None:
        facts["account_karma"] = _karma(account)
    return facts


def refresh_account_facts(identity: Identity, *, actor: str = "user") -> Identity:
    """Ask the provider who the identity is (whoami) and store its account age and karma."""
    account = session_for(identity).whoami()
    facts = _account_facts(account)
    with transaction.atomic():
        Identity.objects.filter(pk=identity.pk).update(**facts, updated_at=timezone.now())
        for name, value in facts.items():
            setattr(identity, name, value)
        audit.record("identity.account_facts", actor=actor, provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=identity,
                     response={"account_created_at": facts.get("account_created_at") and
                               facts["account_created_at"].isoformat(), "karma": facts.get("account_karma")})
    return identity


def create_archive_identity(*, provider_id: str, username: str, display_name: str | None = None,
                            actor: str = "user") -> Identity:
    """An identity with no access yet, for the archive of a data export (username confirmed by the user).

    It reads like any other (inbox, search, people, agents) and cannot sync or
    send until it is connected; connecting the same account later gives it
    its access (same identity, same conversations).
    """
    username = clean_username(username)
    display_name = (display_name or "").strip()[:128] or username
    with transaction.atomic():
        provider = _provider_row(provider_id)
        _lock_provider(provider_id)
        existing = Identity.objects.filter(provider_id=provider_id, external_username__iexact=username).first()
        if existing is not None:
            raise IdentityError(f"{existing.external_username} is already the identity “{existing.display_name}”: "
                                "import the export from its page.")
        has_default = Identity.objects.filter(provider_id=provider_id, is_active=True, is_default=True).exists()
        try:
            with transaction.atomic():
                identity = Identity.objects.create(provider=provider, external_username=username,
                                                   display_name=display_name, is_default=not has_default,
                                                   is_active=True)
        except IntegrityError:
            raise IdentityError(f"{username} is already an identity.") from None
        audit.record("identity.create_archive", actor=actor, provider_id=provider_id, identity_id=identity.pk,
                     entity=identity, request={"username": username},
                     response={"identity_id": identity.pk, "is_default": identity.is_default})
    return identity


def archive_only_message(identity: Identity) -> str:
    return (f"{identity.display_name} has no access to {identity.provider.display_name} yet (only imported history): "
            "connect it to sync or send.")


def _store_secret(identity: Identity, credential_type: str, secret: str) -> bool:
    """Store (or replace) one encrypted credential of the identity; True when it is new."""
    credential, created = ProviderCredential.objects.get_or_create(
        provider_id=identity.provider_id, identity=identity, credential_type=credential_type,
        defaults={"secret_encrypted": "-"})
    credential.secret_encrypted = crypto.encrypt(secret, context=credential.context)
    credential.rotated_at = None if created else timezone.now()
    credential.save(update_fields=["secret_encrypted", "rotated_at"])
    return created


def _store_refresh_token(identity: Identity, refresh_token: str) -> None:
    _store_secret(identity, REFRESH_TOKEN, refresh_token)


def _secret_of(credential: ProviderCredential) -> str:
    try:
        return crypto.decrypt(credential.secret_encrypted, context=credential.context)
    except crypto.CredentialsKeyError as exc:
        raise AuthError(str(exc)) from None


def refresh_token_of(identity: Identity) -> str:
    """The decrypted refresh token (AuthError when missing or unreadable)."""
    credential = ProviderCredential.objects.filter(identity=identity, credential_type=REFRESH_TOKEN).first()
    if credential is None:
        raise AuthError("This identity has no stored access: reconnect it.")
    return _secret_of(credential)


# --------------------------------------------------------------------------- the feed token
def connect_feed_token(*, provider_id: str, text: str, username: str | None = None,
                       display_name: str | None = None, identity: Identity | None = None,
                       actor: str = "user") -> Identity:
    """Connect (or give) an identity its personal feed token, checked by reading its private feed once.

    `text` is a pasted feed link or the bare token (then `username` says whose).
    An existing identity of that account keeps its row and conversations and
    gets the token (a replacement when it had one); `identity` set: only that one.
    Raises IdentityError for what the user must fix, ProviderError when the
    provider could not be asked.  The token is never in a message or audit row.
    """
    provider = get_provider(provider_id)
    if not provider.accepts_feed_tokens:
        raise IdentityError(f"{provider.display_name} has no feed tokens: connect it another way.")
    try:
        name, token = provider.parse_feed_token(text, username or (identity.external_username if identity else None))
    except ProviderError as exc:
        raise IdentityError(exc.user_message) from None
    if identity is not None and name.lower() != identity.external_username.lower():
        raise IdentityError(f"That feed token is for {name}, but this identity is {identity.external_username}.")
    try:
        account = provider.feed_session(name, token).whoami()
    except AuthError as exc:
        raise IdentityError(exc.user_message) from None
    username = clean_username(account.username)
    display_name = (display_name or "").strip()[:128] or username
    with transaction.atomic():
        provider_row = _provider_row(provider_id)
        _lock_provider(provider_id)
        existing = Identity.objects.select_for_update().filter(
            provider_id=provider_id, external_username__iexact=username).first()
        if identity is not None and (existing is None or existing.pk != identity.pk):
            raise IdentityError(f"That feed token is for {username}, but this identity is "
                                f"{identity.external_username}.")
        has_default = Identity.objects.filter(provider_id=provider_id, is_active=True, is_default=True).exists()
        created = existing is None
        if created:
            try:
                with transaction.atomic():
                    existing = Identity.objects.create(
                        provider=provider_row, external_username=username, display_name=display_name,
                        is_default=not has_default, is_active=True)
            except IntegrityError:
                raise IdentityError(f"{username} is already connected.") from None
        else:
            existing.is_active = True
            existing.is_default = existing.is_default or not has_default
            existing.needs_reconnect_at = None
            existing.last_auth_error = None
            existing.save(update_fields=["is_active", "is_default", "needs_reconnect_at", "last_auth_error",
                                         "updated_at"])
        new_token = _store_secret(existing, FEED_TOKEN, token)
        audit.record("identity.connect" if created else
                     ("identity.add_feed_token" if new_token else "identity.replace_feed_token"),
                     actor=actor, provider_id=provider_id, identity_id=existing.pk, entity=existing,
                     request={"username": username, "connection": FEED_TOKEN},
                     response={"identity_id": existing.pk, "is_default": existing.is_default})
    return existing


def remove_feed_token(identity: Identity, *, actor: str = "user") -> bool:
    """Forget the identity's feed token (its conversations stay); False when it had none."""
    with transaction.atomic():
        deleted, _ = ProviderCredential.objects.filter(identity=identity, credential_type=FEED_TOKEN).delete()
        if deleted:
            audit.record("identity.remove_feed_token", actor=actor, provider_id=identity.provider_id,
                         identity_id=identity.pk, entity=identity)
    return bool(deleted)


def masked_feed_token(identity: Identity) -> str | None:
    """The stored feed token as the page shows it: its last four characters only."""
    credential = next((c for c in identity.credentials.all() if c.credential_type == FEED_TOKEN), None)
    if credential is None:
        return None
    try:
        token = _secret_of(credential)
    except AuthError:
        return "(unreadable with the current key)"
    return "•" * 8 + token[-4:]


def connection_types(identity: Identity) -> set[str]:
    """The kinds of credential the identity has (uses prefetched `credentials` when present)."""
    return {c.credential_type for c in identity.credentials.all()}


def capabilities_for(identity: Identity) -> Capabilities:
    """What the identity can do, decided by its provider from how it is connected."""
    types = connection_types(identity)
    provider = get_provider(identity.provider_id)
    # An OAuth identity of an app missing its settings still counts as OAuth: the operator's
    # problem is named when a session is asked for (NotConfiguredError), not hidden here.
    return provider.capabilities(oauth=REFRESH_TOKEN in types,
                                 feed_token=FEED_TOKEN in types and provider.accepts_feed_tokens)


# --------------------------------------------------------------------------- rules
def set_default_identity(identity: Identity, *, actor: str = "user") -> Identity:
    given = identity
    with transaction.atomic():
        _lock_provider(identity.provider_id)
        identity = Identity.objects.select_for_update().get(pk=identity.pk)
        if not identity.is_active:
            raise IdentityError("A deactivated identity cannot be the default: reconnect it first.")
        previous = list(Identity.objects.filter(provider_id=identity.provider_id, is_default=True)
                        .exclude(pk=identity.pk).values_list("pk", flat=True))
        Identity.objects.filter(pk__in=previous).update(is_default=False, updated_at=timezone.now())
        if not identity.is_default:
            identity.is_default = True
            identity.save(update_fields=["is_default", "updated_at"])
        audit.record("identity.set_default", actor=actor, provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=identity, response={"previous_default_ids": previous})
    return _copy_into(given, identity)


def deactivate_identity(identity: Identity, *, actor: str = "user") -> Identity:
    """Soft delete: conversations keep it, pages still show it; the default role moves on."""
    given = identity
    with transaction.atomic():
        _lock_provider(identity.provider_id)
        identity = Identity.objects.select_for_update().get(pk=identity.pk)
        if not identity.is_active:
            return _copy_into(given, identity)
        was_default = identity.is_default
        identity.is_active = False
        identity.is_default = False
        identity.save(update_fields=["is_active", "is_default", "updated_at"])
        heir = None
        if was_default:
            heir = (Identity.objects.select_for_update().filter(provider_id=identity.provider_id, is_active=True)
                    .order_by("created_at", "id").first())
            if heir is not None:
                heir.is_default = True
                heir.save(update_fields=["is_default", "updated_at"])
        audit.record("identity.deactivate", actor=actor, provider_id=identity.provider_id, identity_id=identity.pk,
                     entity=identity, response={"new_default_id": heir.pk if heir else None})
    return _copy_into(given, identity)


def update_identity(identity: Identity, *, display_name: str | None = None, voice: dict | None = None,
                    actor: str = "user") -> Identity:
    """Change the display name and/or voice keys (only those given; an empty value clears a key)."""
    given = identity
    with transaction.atomic():
        identity = Identity.objects.select_for_update().get(pk=identity.pk)
        changed = []
        if display_name is not None:
            name = display_name.strip()
            if not name or len(name) > 128:
                raise IdentityError("A display name is 1 to 128 characters.")
            identity.display_name = name
            changed.append("display_name")
        if voice is not None:
            unknown = set(voice) - set(VOICE_KEYS)
            if unknown:
                raise IdentityError(f"Unknown voice settings: {', '.join(sorted(unknown))}.")
            config = dict(identity.voice_config_json or {})
            for key, value in voice.items():
                value = (value or "").strip()
                if value:
                    config[key] = value
                else:
                    config.pop(key, None)
            identity.voice_config_json = config or None
            changed += [f"voice.{key}" for key in voice]
        identity.save()
        audit.record("identity.update", actor=actor, provider_id=identity.provider_id, identity_id=identity.pk,
                     entity=identity, request={"changed": changed})
    return _copy_into(given, identity)


def mark_needs_reconnect(identity: Identity, error: AuthError) -> None:
    """The provider refused the identity's token: flag it (kept active and readable)."""
    now = timezone.now()
    with transaction.atomic():
        Identity.objects.filter(pk=identity.pk).update(needs_reconnect_at=now, last_auth_error=error.user_message[:255],
                                                       updated_at=now)
        audit.record("identity.auth_failed", actor="system", provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=identity, error=error)
    identity.needs_reconnect_at, identity.last_auth_error = now, error.user_message[:255]


# --------------------------------------------------------------------------- sessions
class IdentitySession(ProviderSession):
    """The provider session of one identity; a refused token flags the identity."""

    def __init__(self, identity: Identity, inner: ProviderSession):
        self.identity = identity
        self._inner = inner

    def __repr__(self) -> str:
        return f"<IdentitySession identity={self.identity.pk}>"

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self._inner, method)(*args, **kwargs)
        except AuthError as exc:
            mark_needs_reconnect(self.identity, exc)
            raise

    def whoami(self) -> RemoteAccount:
        return self._call("whoami")

    def list_messages(self, folder, *, after=None, limit=100) -> MessagePage:
        return self._call("list_messages", folder, after=after, limit=limit)

    def send_message(self, *, to, subject, body, reply_to_external_id=None) -> SentMessage:
        return self._call("send_message", to=to, subject=subject, body=body,
                          reply_to_external_id=reply_to_external_id)

    def list_posts(self, location, *, sort="new", query=None, after=None, limit=100) -> PostPage:
        return self._call("list_posts", location, sort=sort, query=query, after=after, limit=limit)

    def fetch_post(self, external_id) -> RemotePost:
        return self._call("fetch_post", external_id)

    def fetch_profile(self, username) -> RemoteAccount:
        return self._call("fetch_profile", username)

    def fetch_profile_items(self, username, kind, *, after=None, limit=100) -> ProfileItemPage:
        return self._call("fetch_profile_items", username, kind, after=after, limit=limit)


def session_for(identity: Identity) -> ProviderSession:
    """The identity's provider session: OAuth, else its feed token (AuthError when it has neither)."""
    if not identity.is_active:
        raise AuthError("This identity is deactivated: reconnect it to use it again.")
    credentials = {c.credential_type: c for c in ProviderCredential.objects.filter(identity=identity)}
    provider = get_provider(identity.provider_id)
    oauth, feed = credentials.get(REFRESH_TOKEN), credentials.get(FEED_TOKEN)
    if feed is not None and provider.accepts_feed_tokens and (oauth is None or not provider.is_configured()):
        inner = provider.feed_session(identity.external_username, _secret_of(feed))
    elif oauth is not None:
        inner = provider.session(_secret_of(oauth))
    else:
        raise AuthError(archive_only_message(identity) if not credentials
                        else "This identity has no stored access: reconnect it.")
    return IdentitySession(identity, inner)


# --------------------------------------------------------------------------- do not contact
def _dnc_entries(provider_id: str, username: str):
    name = (username or "").strip()
    # Usernames are case-insensitive on providers; iexact also holds on SQLite's binary collation.
    return DoNotContact.objects.filter(provider_id=provider_id, external_username__iexact=name) if name \
        else DoNotContact.objects.none()


def is_do_not_contact(provider_id: str, username: str) -> bool:
    return _dnc_entries(provider_id, username).exists()


def check_can_contact(provider_id: str, username: str) -> None:
    """Every send and draft path calls this first."""
    entry = _dnc_entries(provider_id, username).first()
    if entry is not None:
        raise DoNotContactError(f"{entry.external_username} is on the do-not-contact list: nothing is sent or "
                                "drafted to them.")


def add_do_not_contact(provider_id: str, username: str, reason: str | None = None, *,
                       actor: str = "user") -> DoNotContact:
    """Put a person on the list (kept once, whatever the case; a new reason replaces the old)."""
    name = clean_username(username)
    reason = (reason or "").strip()[:255] or None
    with transaction.atomic():
        provider = _provider_row(provider_id)
        entry = DoNotContact.objects.select_for_update().filter(provider_id=provider_id,
                                                                external_username__iexact=name).first()
        if entry is None:
            entry = DoNotContact.objects.create(provider=provider, external_username=name, reason=reason)
        elif reason and reason != entry.reason:
            entry.reason = reason
            entry.save(update_fields=["reason"])
        audit.record("dnc.add", actor=actor, provider_id=provider_id, entity=entry,
                     request={"username": entry.external_username, "reason": entry.reason})
    return entry


def remove_do_not_contact(provider_id: str, username: str, *, actor: str = "user") -> bool:
    name = (username or "").strip()
    with transaction.atomic():
        entries = list(DoNotContact.objects.select_for_update().filter(provider_id=provider_id,
                                                                       external_username__iexact=name))
        for entry in entries:
            audit.record("dnc.remove", actor=actor, provider_id=provider_id, entity=entry,
                         request={"username": entry.external_username})
        DoNotContact.objects.filter(pk__in=[e.pk for e in entries]).delete()
    return bool(entries)
