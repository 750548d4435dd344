"""Sending a private message: the only send path, called from the user's Send click.

Where an identity cannot send through the provider (a feed token only), the
user sends on the provider's own compose page: `prepare_site_send` runs every
send rule first and only then gives its prefilled URL; `record_sent_by_hand`
is the "I sent it" click (idempotent per form key, audited, contact state
updated).  The message is stored without a remote id, and the inbox store links
it to the real one when a later sync or import brings it in.

Order of things: validate -> claim the idempotency key (a repeat returns the
first result, never sends twice) -> do-not-contact check -> pacing (the daily
cap of first messages, the provider's cooldown: `pacing.check_send_allowed`;
a "doing that too much" answer starts the cooldown) -> provider call with
the conversation's identity -> store the message at once with its remote id ->
contact state -> audit row.  Every attempt, sent or not, leaves an audit row.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

import search
from identities.models import Identity
from identities.services import DoNotContactError, archive_only_message, capabilities_for, check_can_contact, session_for
from rediska import audit
from rediska.providers import get_provider
from rediska.providers.base import SentMessage
from rediska.providers.errors import (
    AuthError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    RecipientRefusedError,
    SendCooldownError,
    TransientError,
)

from ..accounts import mark_contacted, upsert_accounts
from ..errors import SendError
from ..models import Conversation, ExternalAccount, Message, SendAttempt
from . import pacing
from .ingest import MAX_SUBJECT, PENDING_PREFIX, PLACEHOLDERS

log = logging.getLogger(__name__)

MAX_BODY = 10_000
KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
WAIT_FOR_FIRST_SECONDS = 5.0


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def _error_code(exc: Exception) -> str:
    if isinstance(exc, SendError):
        return exc.code
    for cls, code in ((DoNotContactError, "dnc"), (RecipientRefusedError, "recipient_refused"),
                      (SendCooldownError, "cooldown"), (RateLimitedError, "rate_limited"), (AuthError, "auth"),
                      (TransientError, "unreachable"), (NotFoundError, "not_found")):
        if isinstance(exc, cls):
            return code
    return "refused"


def _recipient(identity: Identity, conversation: Conversation | None, to_username, subject) -> tuple[str, str, str | None]:
    """(recipient, subject, message replied to) for this send."""
    if conversation is None:
        to, subject = (to_username or "").strip(), (subject or "").strip()
        if not to:
            raise SendError("Say who the message is for.")
        if not subject:
            raise SendError("A first message needs a subject.")
        if len(subject) > MAX_SUBJECT:
            raise SendError(f"The subject is too long (at most {MAX_SUBJECT} characters).")
        return to, subject, None
    if conversation.identity_id != identity.pk:
        raise SendError("This conversation belongs to another identity: replies always go out as that identity.")
    to = conversation.counterpart_account.external_username
    if to in PLACEHOLDERS:
        raise SendError("Nobody can receive a reply here: the account is gone or this is an automated notice.")
    reply_to = (
        conversation.messages.filter(external_message_id__isnull=False).order_by("-sent_at", "-id")
        .values_list("external_message_id", flat=True).first()
    )
    if reply_to is None:
        raise SendError("There is nothing to reply to yet in this conversation: sync the identity, then reply.")
    return to, conversation.subject or "", reply_to


def _claim(key: str, identity, conversation, to: str, subject: str, body: str):
    """The attempt for this key, and the message when the key already sent one."""
    with transaction.atomic():
        attempt = SendAttempt.objects.select_for_update().filter(idempotency_key=key).first()
        if attempt is None:
            try:
                with transaction.atomic():
                    return SendAttempt.objects.create(
                        idempotency_key=key, identity=identity, conversation=conversation, to_username=to,
                        subject=subject or None, body_text=body,
                    ), None
            except IntegrityError:  # the other click of a double click got here first
                attempt = SendAttempt.objects.select_for_update().get(idempotency_key=key)
        if attempt.identity_id != identity.pk or attempt.to_username.lower() != to.lower():
            raise SendError("This form was already used for another message: reload the page.", code="stale")
        if attempt.status == SendAttempt.Status.FAILED:
            # Trying again after a failure is a new try of the same click.
            attempt.status, attempt.body_text, attempt.subject = SendAttempt.Status.PENDING, body, subject or None
            attempt.error_code = attempt.error_message = None
            attempt.is_first_message = False  # counted again by the pacing gate of this try
            attempt.save(update_fields=["status", "body_text", "subject", "error_code", "error_message",
                                        "is_first_message", "updated_at"])
            return attempt, None
    return attempt, _outcome(attempt)


def _outcome(attempt: SendAttempt) -> Message:
    """What the first request of this key did: its message, or why there is none."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_SECONDS
    while attempt.status == SendAttempt.Status.PENDING and time.monotonic() < deadline:
        time.sleep(0.2)
        attempt.refresh_from_db()
    if attempt.status == SendAttempt.Status.PENDING:
        raise SendError("This message is already being sent: wait a moment and reload.", code="in_progress")
    if attempt.status == SendAttempt.Status.FAILED:
        raise SendError(attempt.error_message or "The message was not sent.", code=attempt.error_code or "refused")
    if attempt.message_id is None:
        raise SendError("This message was sent; it will appear here with the next sync.", code="already_sent")
    return attempt.message


def send_manual(
    *,
    identity: Identity,
    body: str,
    idempotency_key: str,
    conversation: Conversation | None = None,
    to_username: str | None = None,
    subject: str | None = None,
) -> Message:
    """Send `body` as `identity`: a reply in `conversation`, or a first message to `to_username`.

    Raises `SendError` (with `user_message` and `code`) when nothing was sent.
    """
    key = (idempotency_key or "").strip()
    if not KEY.match(key):
        raise SendError("This form has expired: reload the page and send again.", code="stale")
    # Browsers submit textareas with CRLF line breaks; the provider stores LF, and
    # the copy that later comes back through sync must match what we stored.
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise SendError("Write a message first.")
    if len(body) > MAX_BODY:
        raise SendError(f"The message is too long (at most {MAX_BODY:,} characters).")
    if not identity.is_active:
        raise SendError("This identity is deactivated: reconnect it to send.", code="auth")
    if identity.is_archive_only:
        raise SendError(archive_only_message(identity), code="archive_only")
    to, subject, reply_to = _recipient(identity, conversation, to_username, subject)
    request = {"idempotency_key": key, "conversation_id": conversation.pk if conversation else None, "to": to,
               "subject": subject or None, "body": body}

    attempt, replay = _claim(key, identity, conversation, to, subject, body)
    if replay is not None:
        audit.record("message.send_manual", provider_id=identity.provider_id, identity_id=identity.pk,
                     entity=replay, request=request, response={"replayed": True, "message_id": replay.pk})
        return replay

    try:
        check_can_contact(identity.provider_id, to)  # before anything reaches the provider
        _check_pacing(identity, attempt, conversation, to)
        sent = session_for(identity).send_message(to=to, subject=subject, body=body, reply_to_external_id=reply_to)
    except SendError as exc:
        _failed(attempt, identity, request, exc)
        raise
    except (DoNotContactError, ProviderError) as exc:
        message = exc.user_message
        if isinstance(exc, SendCooldownError):
            until = pacing.start_cooldown(identity, exc)
            message += (f" Nothing is sent from {identity.display_name} until "
                        f"{timezone.localtime(until):%Y-%m-%d %H:%M}.")
        _failed(attempt, identity, request, exc)
        raise SendError(message, code=_error_code(exc)) from exc
    except Exception as exc:
        _failed(attempt, identity, request, exc)
        raise

    try:
        with transaction.atomic():
            message = _store_sent(identity, conversation, to, subject, body, sent, key)
            SendAttempt.objects.filter(pk=attempt.pk).update(
                status=SendAttempt.Status.SENT, message=message, conversation=message.conversation,
                updated_at=timezone.now(),
            )
            mark_contacted(message.conversation.counterpart_account, message.sent_at)
            audit.record("message.send_manual", provider_id=identity.provider_id, identity_id=identity.pk,
                         entity=message, request=request,
                         response={"message_id": message.pk, "external_message_id": sent.external_id,
                                   "external_conversation_id": message.conversation.external_conversation_id})
            search.index_later("message", message.pk)
    except Exception as exc:
        # It went out: never let a retry send it again; the next sync stores it.
        log.exception("sent message %s could not be stored", key)
        SendAttempt.objects.filter(pk=attempt.pk).update(status=SendAttempt.Status.SENT, updated_at=timezone.now())
        audit.record("message.send_manual", provider_id=identity.provider_id, identity_id=identity.pk,
                     request=request, response={"external_message_id": sent.external_id}, error=exc)
        raise SendError("The message was sent, but could not be stored here yet; it will appear with the next sync.",
                        code="already_sent") from exc
    return message


def _account_of(identity: Identity, conversation: Conversation | None, to: str) -> ExternalAccount | None:
    if conversation is not None:
        return conversation.counterpart_account
    return ExternalAccount.objects.filter(provider_id=identity.provider_id, external_username__iexact=to).first()


def _check_pacing(identity: Identity, attempt: SendAttempt, conversation: Conversation | None, to: str) -> None:
    """The pacing gate; a first message is counted (flagged on its attempt) under the identity's row lock,
    so two first messages sent at once cannot both take the last one of the day."""
    first = conversation is None and pacing.is_first_message(identity, to)
    account = _account_of(identity, conversation, to)
    with transaction.atomic():
        locked = Identity.objects.select_for_update().get(pk=identity.pk)
        pacing.check_send_allowed(locked, account, is_first_message=first)
        if first:
            SendAttempt.objects.filter(pk=attempt.pk).update(is_first_message=True)


def _failed(attempt: SendAttempt, identity: Identity, request: dict, exc: Exception) -> None:
    user_message = getattr(exc, "user_message", None) or "The message could not be sent."
    with transaction.atomic():
        SendAttempt.objects.filter(pk=attempt.pk).update(
            status=SendAttempt.Status.FAILED, error_code=_error_code(exc), error_message=user_message,
            updated_at=timezone.now(),
        )
        audit.record("message.send_manual", provider_id=identity.provider_id, identity_id=identity.pk,
                     entity_type="conversations" if request["conversation_id"] else None,
                     entity_id=request["conversation_id"], request=request, error=exc)


def _store_sent(identity, conversation, to, subject, body, sent: SentMessage, key: str) -> Message:
    now = timezone.now()
    sent_at = sent.sent_at if isinstance(sent.sent_at, datetime) and timezone.is_aware(sent.sent_at) else now
    if conversation is None:
        account = upsert_accounts(identity.provider_id, {to: None})[to]
        conversation, _ = Conversation.objects.get_or_create(
            provider_id=identity.provider_id,
            external_conversation_id=sent.conversation_external_id or f"{PENDING_PREFIX}{key}",
            defaults={"identity": identity, "counterpart_account": account, "subject": subject[:MAX_SUBJECT] or None},
        )
    fields = {"conversation": conversation, "identity": identity, "direction": Message.Direction.OUT,
              "sent_at": sent_at, "body_text": body, "remote_visibility": "visible"}
    if sent.external_id:
        # A sync may have stored it already between the send and here.
        message, _ = Message.objects.get_or_create(
            provider_id=identity.provider_id, external_message_id=sent.external_id, defaults=fields
        )
    else:
        message = Message.objects.create(provider_id=identity.provider_id, **fields)
    Conversation.objects.filter(pk=message.conversation_id).filter(
        Q(last_activity_at__isnull=True) | Q(last_activity_at__lte=message.sent_at) | Q(last_message__isnull=True)
    ).update(last_message=message, last_direction=message.direction, last_activity_at=message.sent_at, updated_at=now)
    return message


# --- sending on the provider's own page -------------------------------------------------------


def _site_recipient(identity: Identity, conversation: Conversation | None, to_username, subject) -> tuple[str, str]:
    """(recipient, subject) of a message the user sends on the provider's compose page."""
    if conversation is None:
        to, subject, _ = _recipient(identity, None, to_username, subject)
        return to, subject
    if conversation.identity_id != identity.pk:
        raise SendError("This conversation belongs to another identity: replies always go out as that identity.")
    to = conversation.counterpart_account.external_username
    if to in PLACEHOLDERS:
        raise SendError("Nobody can receive a reply here: the account is gone or this is an automated notice.")
    subject = (conversation.subject or "").strip() or "(no subject)"
    return to, subject if subject.lower().startswith("re:") else f"re: {subject}"[:MAX_SUBJECT]


def _clean_body(body: str) -> str:
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        raise SendError("Write a message first.")
    if len(body) > MAX_BODY:
        raise SendError(f"The message is too long (at most {MAX_BODY:,} characters).")
    return body


def prepare_site_send(*, identity: Identity, body: str, conversation: Conversation | None = None,
                      to_username: str | None = None, subject: str | None = None) -> dict:
    """Every send rule (identity, recipient, do-not-contact), then the provider's prefilled compose URL.

    Nothing is sent or stored: the user presses Send on the provider's page.
    Returns {"url", "to", "subject", "body"}; raises SendError when a rule refuses.
    """
    body = _clean_body(body)
    if not identity.is_active:
        raise SendError("This identity is deactivated: reconnect it to send.", code="auth")
    to, subject = _site_recipient(identity, conversation, to_username, subject)
    try:
        check_can_contact(identity.provider_id, to)
    except DoNotContactError as exc:
        raise SendError(exc.user_message, code="dnc") from exc
    # The daily cap of first messages holds on the provider's page too (checked, not counted:
    # only "I sent it" says the message went out).
    pacing.check_send_allowed(identity, _account_of(identity, conversation, to),
                              is_first_message=conversation is None and pacing.is_first_message(identity, to))
    try:
        url = get_provider(identity.provider_id).compose_url(to=to, subject=subject, body=body)
    except ProviderError as exc:
        raise SendError(exc.user_message, code="invalid") from exc
    if not url:
        raise SendError("This provider has no page to send from: connect the identity with its API app.",
                        code="invalid")
    audit.record("message.open_compose", provider_id=identity.provider_id, identity_id=identity.pk,
                 entity=conversation, request={"to": to, "subject": subject,
                                               "conversation_id": conversation.pk if conversation else None})
    return {"url": url, "to": to, "subject": subject, "body": body}


def record_sent_by_hand(*, identity: Identity, body: str, idempotency_key: str,
                        conversation: Conversation | None = None, to_username: str | None = None,
                        subject: str | None = None) -> Message:
    """The "I sent it" click: store the message the user sent on the provider's page, once per form key."""
    key = (idempotency_key or "").strip()
    if not KEY.match(key):
        raise SendError("This form has expired: open the message again.", code="stale")
    body = _clean_body(body)
    if not identity.is_active:
        raise SendError("This identity is deactivated.", code="auth")
    to, subject = _site_recipient(identity, conversation, to_username, subject)
    request = {"idempotency_key": key, "conversation_id": conversation.pk if conversation else None, "to": to,
               "subject": subject, "body": body, "by_hand": True}
    attempt, replay = _claim(key, identity, conversation, to, subject, body)
    if replay is not None:
        audit.record("message.sent_by_hand", provider_id=identity.provider_id, identity_id=identity.pk,
                     entity=replay, request=request, response={"replayed": True, "message_id": replay.pk})
        return replay
    try:
        check_can_contact(identity.provider_id, to)
    except DoNotContactError as exc:
        _failed(attempt, identity, request, exc)
        raise SendError(exc.user_message, code="dnc") from exc
    now = timezone.now()
    # It already went out: the cap is never applied here, but a first message counts against it.
    first = conversation is None and pacing.is_first_message(identity, to)
    with transaction.atomic():
        message = _store_sent(identity, conversation, to, subject, body, SentMessage(None, None, now), key)
        SendAttempt.objects.filter(pk=attempt.pk).update(
            status=SendAttempt.Status.SENT, message=message, conversation=message.conversation, updated_at=now,
            is_first_message=first)
        mark_contacted(message.conversation.counterpart_account, message.sent_at)
        audit.record("message.sent_by_hand", provider_id=identity.provider_id, identity_id=identity.pk,
                     entity=message, request=request, response={"message_id": message.pk})
        search.index_later("message", message.pk)
    return message


def sends_through_provider(identity: Identity) -> bool:
    """True when Send goes through the provider; False when the user sends on its own page."""
    return capabilities_for(identity).send
