"""Pacing that protects the personas: a daily cap of first messages, and the provider's cooldown.

- A *first message* opens a conversation with someone the identity never wrote
  with.  Each identity may send `cap` of them per calendar day (TIME_ZONE):
  `PACING_FIRST_MESSAGES_PER_DAY`, or the stricter
  `PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY` while the account is younger than
  `PACING_NEW_ACCOUNT_DAYS` (or its age is not known yet); the identity's own
  `first_messages_per_day` replaces both.  Replies in an existing conversation are
  never capped.
- When the provider says "you are doing that too much, try again in N minutes"
  (`SendCooldownError`), the identity may send nothing, reply or first message,
  until then: the time is stored on the identity and every send control shows it.

`check_send_allowed` is the one gate every send path calls before the provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from identities.models import Identity
from rediska import audit
from rediska.providers.errors import SendCooldownError

from ..errors import InboxError, SendError
from ..models import Conversation, ExternalAccount, SendAttempt


@dataclass(frozen=True)
class Pacing:
    """What an identity may still send today, in the words the send controls show."""

    cap: int
    used: int
    young: bool  # the stricter cap of a young (or not yet known) account applies
    custom: bool  # the identity's own cap
    age_days: int | None
    cooldown_until: datetime | None
    cooldown_reason: str

    @property
    def left(self) -> int:
        return max(0, self.cap - self.used)

    @property
    def cooling_down(self) -> bool:
        return self.cooldown_until is not None

    @property
    def cap_reason(self) -> str:
        if self.custom:
            return "this identity's own daily cap"
        if self.age_days is None:
            return (f"the cap for accounts younger than {settings.PACING_NEW_ACCOUNT_DAYS} days, "
                    "until the account's age is read from the provider")
        if self.young:
            return f"the cap for accounts younger than {settings.PACING_NEW_ACCOUNT_DAYS} days"
        return "the default daily cap"

    def summary(self) -> str:
        return f"{self.left} of {self.cap} first messages to new people left today ({self.cap_reason})."

    def cooldown_message(self) -> str:
        until = timezone.localtime(self.cooldown_until).strftime("%Y-%m-%d %H:%M")
        reason = f" ({self.cooldown_reason})" if self.cooldown_reason else ""
        return ("The provider asked this identity to wait before sending again: "
                f"nothing can be sent until {until}{reason}.")


def _day_start(now: datetime) -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def pacing_for(identity: Identity, *, now: datetime | None = None) -> Pacing:
    now = now or timezone.now()
    age_days = (now - identity.account_created_at).days if identity.account_created_at else None
    young = age_days is None or age_days < settings.PACING_NEW_ACCOUNT_DAYS
    custom = identity.first_messages_per_day is not None
    if custom:
        cap = identity.first_messages_per_day
    elif young:
        cap = settings.PACING_NEW_ACCOUNT_FIRST_MESSAGES_PER_DAY
    else:
        cap = settings.PACING_FIRST_MESSAGES_PER_DAY
    used = SendAttempt.objects.filter(
        identity=identity, is_first_message=True, created_at__gte=_day_start(now),
        status__in=(SendAttempt.Status.PENDING, SendAttempt.Status.SENT),
    ).count()
    cooling = identity.send_cooldown_until if identity.send_cooldown_until and identity.send_cooldown_until > now \
        else None
    return Pacing(cap=cap, used=used, young=young, custom=custom, age_days=age_days, cooldown_until=cooling,
                  cooldown_reason=(identity.send_cooldown_reason or "") if cooling else "")


def is_first_message(identity: Identity, to_username: str) -> bool:
    """True when the identity has no conversation yet with this person (a reply is never a first message)."""
    account = ExternalAccount.objects.filter(provider_id=identity.provider_id,
                                             external_username__iexact=(to_username or "").strip()).first()
    return account is None or not Conversation.objects.filter(identity=identity, counterpart_account=account).exists()


def check_send_allowed(identity: Identity, account: ExternalAccount | None = None, *, is_first_message: bool,
                       now: datetime | None = None) -> Pacing:
    """Raise `SendError` (code "cooldown" or "cap") when this send must wait; else the pacing it counts against."""
    pacing = pacing_for(identity, now=now)
    if pacing.cooling_down:
        what = "a first message" if is_first_message else "a reply"
        raise SendError(f"{pacing.cooldown_message()} This applies to {what} too.", code="cooldown")
    if is_first_message and pacing.left <= 0:
        who = f" to {account.external_username}" if account is not None else ""
        raise SendError(
            f"Not sent{who}: {identity.display_name} has sent {pacing.used} first message"
            f"{'s' if pacing.used != 1 else ''} to new people today, {pacing.cap_reason} ({pacing.cap}). "
            "Replies in existing conversations are not capped; change the cap on the identity page.",
            code="cap",
        )
    return pacing


def start_cooldown(identity: Identity, exc: SendCooldownError, *, now: datetime | None = None) -> datetime:
    """Store the provider's "wait N minutes" on the identity; every send control shows it until then."""
    now = now or timezone.now()
    until = now + timedelta(seconds=exc.retry_after or 600)
    reason = exc.user_message[:255]
    with transaction.atomic():
        Identity.objects.filter(pk=identity.pk).update(send_cooldown_until=until, send_cooldown_reason=reason,
                                                       updated_at=now)
        audit.record("identity.send_cooldown", actor="system", provider_id=identity.provider_id,
                     identity_id=identity.pk, entity=identity,
                     response={"until": until.isoformat(), "seconds": exc.retry_after})
    identity.send_cooldown_until, identity.send_cooldown_reason = until, reason
    return until


def set_first_message_cap(identity: Identity, cap: int | None) -> Identity:
    """The identity's own daily cap of first messages (None: back to the settings' default)."""
    if cap is not None and not 0 <= cap <= 1000:
        raise InboxError("A daily cap is a number from 0 to 1000, or empty for the default.")
    with transaction.atomic():
        Identity.objects.filter(pk=identity.pk).update(first_messages_per_day=cap, updated_at=timezone.now())
        audit.record("identity.pacing", provider_id=identity.provider_id, identity_id=identity.pk, entity=identity,
                     request={"first_messages_per_day": cap})
    identity.first_messages_per_day = cap
    return identity
