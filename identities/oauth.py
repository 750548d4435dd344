"""The one-time OAuth `state`: signed, short-lived, and bound to the browser session.

`begin` stores a nonce (with what the flow is for) in the session and signs it
into the state; `consume` checks the signature and age and pops the nonce, so a
state works once, in the browser that started it, within ten minutes.
"""

from __future__ import annotations

import secrets
import time

from django.core import signing

from rediska.providers import get_provider

SESSION_KEY = "identities_oauth"
SALT = "identities.oauth.state"
MAX_AGE = 600
MAX_PENDING = 10


class StateError(Exception):
    def __init__(self, user_message: str):
        self.user_message = user_message
        super().__init__(user_message)


def begin(request, provider_id: str, *, display_name: str = "", identity_id: int | None = None) -> str:
    """The provider's authorize URL for a new flow (raises the provider's errors when not configured)."""
    provider = get_provider(provider_id)
    nonce = secrets.token_urlsafe(18)
    url = provider.authorize_url(signing.dumps(nonce, salt=SALT))
    now = time.time()
    pending = {k: v for k, v in request.session.get(SESSION_KEY, {}).items() if v["expires"] > now}
    for old in sorted(pending, key=lambda k: pending[k]["expires"])[:max(0, len(pending) - MAX_PENDING + 1)]:
        del pending[old]
    pending[nonce] = {"provider_id": provider_id, "display_name": display_name, "identity_id": identity_id,
                      "expires": now + MAX_AGE}
    request.session[SESSION_KEY] = pending
    return url


def consume(request, state: str) -> dict:
    """What the flow was for; StateError when the state is forged, stale or replayed."""
    try:
        nonce = signing.loads(state or "", salt=SALT, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise StateError("This sign-in took longer than ten minutes and has expired: start again.") from None
    except signing.BadSignature:
        raise StateError("This sign-in link is not valid (it did not come from Rediska): start again.") from None
    pending = request.session.get(SESSION_KEY, {})
    info = pending.pop(nonce, None) if isinstance(nonce, str) else None
    request.session[SESSION_KEY] = pending
    if info is None or info["expires"] < time.time():
        raise StateError("This sign-in link was already used or has expired: start again.")
    return info
