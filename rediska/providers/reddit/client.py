"""PRAW/prawcore plumbing: the rate-limited requestor, client factories, error translation.

Every HTTP request (token calls included) goes through `LimitedRequestor`,
PRAW's documented hook: it takes a slot from the limiter shared by every
identity of the OAuth app, feeds the answer back (`X-Ratelimit-*`, 429, 5xx),
retries an idempotent request once after a server error or network failure,
and raises our errors for 429/5xx/network failures itself.  prawcore's own
per-session limiter and retry sleeps therefore never run: the headers are
consumed here, so a worker is never put to sleep for long (a long wait
becomes `RateLimitedError(retry_after)` for the job ledger).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import praw
import praw.exceptions
import prawcore
import requests
from prawcore.const import ACCESS_TOKEN_PATH

from rediska.ratelimit import RateLimiter

from ..errors import (
    AuthError,
    ForbiddenError,
    InvalidRequestError,
    ListingUnavailableError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    RecipientRefusedError,
    SendCooldownError,
    TransientError,
)
from .config import Config

RATELIMIT_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset")
# "you are doing that too much. try again in 9 minutes." / "Take a break for 30 seconds before trying again."
COOLDOWN_WAIT = re.compile(r"(\d+)\s*(milliseconds?|ms|seconds?|minutes?|hours?)\b", re.IGNORECASE)
COOLDOWN_UNITS = {"ms": 0.001, "millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600}
# When Reddit's words give no duration, wait this long rather than try again at once.
COOLDOWN_DEFAULT_SECONDS = 10 * 60


def _seconds(value) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


class LimitedRequestor(prawcore.Requestor):
    def __init__(self, user_agent, oauth_url, reddit_url, *, limiter: RateLimiter, timeout: float, **kwargs):
        super().__init__(user_agent, oauth_url, reddit_url, timeout=timeout, **kwargs)
        self.limiter = limiter

    def request(self, method, url, *args, timeout=None, **kwargs):
        # Resending a message is never automatic: only reads and token calls are retried.
        retry_safe = method.upper() == "GET" or url.endswith(ACCESS_TOKEN_PATH)
        for attempt in (1, 2):
            failure = None
            with self.limiter.slot():
                try:
                    response = self._http.request(method, url, *args, timeout=self.timeout, **kwargs)
                except requests.Timeout:
                    failure = TransientError(
                        "Reddit did not answer in time; try again shortly."
                        + ("" if retry_safe else " The request may still have gone through.")
                    )
                except requests.RequestException:
                    failure = TransientError("Reddit could not be reached; try again shortly.")
            if failure is not None:
                self.limiter.observe(None, {})
                if retry_safe and attempt == 1:
                    continue
                raise failure
            status = response.status_code
            self.limiter.observe(status, response.headers)
            if status == 429:
                retry_after = _seconds(response.headers.get("retry-after")) or _seconds(
                    response.headers.get("x-ratelimit-reset"))
                raise RateLimitedError("Reddit's rate limit is reached; retrying shortly.", retry_after=retry_after)
            if status >= 500:
                if retry_safe and attempt == 1:
                    continue
                raise TransientError(f"Reddit had a server error ({status}); try again shortly.", status=status)
            for header in RATELIMIT_HEADERS:  # obeyed by our limiter; prawcore's would sleep per session
                response.headers.pop(header, None)
            return response
        raise AssertionError("unreachable")


def limiter_for(config: Config) -> RateLimiter:
    # Reddit counts requests per OAuth client id: every identity of the app shares one bucket.
    return RateLimiter(f"reddit:{config.client_id}", lease_seconds=config.timeout + 30)


def _user_agent(config: Config) -> str:
    return f"{config.user_agent} PRAW/{praw.__version__}"


def authenticator(config: Config) -> prawcore.TrustedAuthenticator:
    requestor = LimitedRequestor(_user_agent(config), config.oauth_url, config.base_url,
                                 limiter=limiter_for(config), timeout=config.timeout)
    return prawcore.TrustedAuthenticator(requestor, config.client_id, config.client_secret,
                                         config.redirect_uri or None)


def authorizer(config: Config, refresh_token: str | None = None) -> prawcore.Authorizer:
    return prawcore.Authorizer(authenticator(config), refresh_token=refresh_token)


def reddit(config: Config, refresh_token: str) -> praw.Reddit:
    return praw.Reddit(
        client_id=config.client_id,
        client_secret=config.client_secret,
        redirect_uri=config.redirect_uri or None,
        refresh_token=refresh_token,
        user_agent=config.user_agent,
        oauth_url=config.oauth_url,
        reddit_url=config.base_url,
        check_for_updates=False,
        requestor_class=LimitedRequestor,
        requestor_kwargs={"limiter": limiter_for(config), "timeout": config.timeout},
    )


def _reason(exc: prawcore.ResponseException) -> str:
    try:
        body = exc.response.json()
    except ValueError:
        return ""
    return str(body.get("reason") or "") if isinstance(body, dict) else ""


def _is_token_call(exc: prawcore.ResponseException) -> bool:
    return (getattr(exc.response, "url", "") or "").split("?")[0].endswith(ACCESS_TOKEN_PATH)


@contextlib.contextmanager
def translated(subject: str | None = None) -> Iterator[None]:
    """Turn PRAW/prawcore exceptions into provider errors; `subject` names the thing asked for."""
    name = subject or "This"
    try:
        yield
    except ProviderError:
        raise
    except prawcore.OAuthException as exc:
        if exc.error == "invalid_grant":
            raise AuthError("Reddit refused the authorization (revoked, expired or already used): "
                            "reconnect the identity.", status=exc.response.status_code) from None
        raise AuthError(f"Reddit refused the authorization ({exc.error}).", status=exc.response.status_code) from None
    except prawcore.InsufficientScope:
        raise AuthError("The identity did not grant the permissions this needs: reconnect it.", status=403) from None
    except prawcore.InvalidToken:
        raise AuthError(status=401) from None
    except prawcore.Forbidden as exc:
        reason = _reason(exc)
        if reason == "private":
            raise ForbiddenError(f"{name} is private.", status=403) from None
        if reason in ("banned", "quarantined", "gold_only"):
            raise ForbiddenError(f"{name} is {reason.replace('_', ' ')}.", status=403) from None
        raise ForbiddenError(f"{name} is not accessible to this identity (suspended, private or blocked).",
                             status=403) from None
    except prawcore.NotFound as exc:
        if _reason(exc) == "banned":
            raise ForbiddenError(f"{name} is banned.", status=404) from None
        raise NotFoundError(f"{name} was not found on Reddit.", status=404) from None
    except prawcore.Redirect as exc:
        if "/login" in (exc.path or ""):
            # Reddit's answer for a listing it retired for apps: not "missing", and retrying will not help.
            raise ListingUnavailableError(f"Reddit no longer serves {name} to this app (it redirects to the login "
                                          "page).", status=302) from None
        raise NotFoundError(f"{name} does not exist on Reddit.", status=302) from None
    except prawcore.TooManyRequests as exc:
        raise RateLimitedError(retry_after=_seconds(exc.response.headers.get("retry-after"))) from None
    except (prawcore.ServerError, prawcore.BadJSON):
        raise TransientError("Reddit sent an answer Rediska could not read; try again shortly.") from None
    except prawcore.ResponseException as exc:
        status = exc.response.status_code
        if _is_token_call(exc) and status == 401:
            raise AuthError("Reddit refused this app's client id or secret: check PROVIDER_REDDIT_CLIENT_ID "
                            "and PROVIDER_REDDIT_CLIENT_SECRET.", status=status) from None
        if _is_token_call(exc) or status == 401:
            raise AuthError("Reddit refused the identity's access (revoked or expired): reconnect it.",
                            status=status) from None
        raise InvalidRequestError(f"Reddit rejected the request ({status}).", status=status) from None
    except prawcore.RequestException:
        raise TransientError() from None
    except praw.exceptions.RedditAPIException as exc:
        raise api_error([[item.error_type, item.message, item.field] for item in exc.items], subject) from None
    except (praw.exceptions.PRAWException, prawcore.PrawcoreException) as exc:
        raise InvalidRequestError(f"Reddit rejected the request ({type(exc).__name__}).") from None


def api_error(errors: list, subject: str | None = None) -> ProviderError:
    """The provider error for Reddit's `{"json": {"errors": [[code, message, field], ...]}}`."""
    code, message = (errors[0] + [None, None])[:2] if errors and isinstance(errors[0], list) else ("", "")
    name = subject or "The recipient"
    if code in ("USER_DOESNT_EXIST", "NO_USER"):
        return NotFoundError(f"{name} does not exist on Reddit (deleted or never existed).")
    if code in ("NOT_WHITELISTED_BY_USER_MESSAGE", "USER_BLOCKED_MESSAGE", "USER_MUTED", "BLOCKED"):
        return RecipientRefusedError(f"{name} does not accept private messages from this identity.")
    if code == "RATELIMIT":
        return SendCooldownError(f"Reddit says: {message}" if message else None,
                                 retry_after=cooldown_seconds(message), status=None)
    if code in ("NO_THING_ID", "DELETED_COMMENT", "DELETED_LINK", "INVALID_THING_ID"):
        return NotFoundError("The message being replied to no longer exists on Reddit.")
    return InvalidRequestError(f"Reddit refused the message: {message or code}.")


def cooldown_seconds(message: str | None) -> float:
    """How long Reddit's RATELIMIT words ask to wait, in seconds (the default when they say no time)."""
    match = COOLDOWN_WAIT.search(message or "")
    if match is None:
        return float(COOLDOWN_DEFAULT_SECONDS)
    unit = match.group(2).lower().rstrip("s") if match.group(2).lower() != "ms" else "ms"
    return max(1.0, int(match.group(1)) * COOLDOWN_UNITS.get(unit, 60))


def raise_json_errors(payload, subject: str | None = None) -> None:
    errors = ((payload or {}).get("json") or {}).get("errors") if isinstance(payload, dict) else None
    if errors:
        raise api_error(errors, subject)
