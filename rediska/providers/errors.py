"""Errors a provider may raise.  Each carries a message fit to show the user."""

from __future__ import annotations


class ProviderError(Exception):
    """Base class.  `user_message` is plain words, safe to render; never a secret."""

    transient = False
    default_message = "The provider returned an error."

    def __init__(self, user_message: str | None = None, *, status: int | None = None):
        self.user_message = user_message or self.default_message
        self.status = status
        super().__init__(self.user_message)


class AuthError(ProviderError):
    default_message = "Access was refused: the identity must be reconnected."


class ForbiddenError(ProviderError):
    default_message = "This is private, banned or otherwise not accessible."


class NotFoundError(ProviderError):
    default_message = "Not found on the provider."


class RecipientRefusedError(ProviderError):
    default_message = "This person does not accept messages from this identity."


class ListingUnavailableError(ProviderError):
    """The provider no longer serves this listing to this app (e.g. a redirect to its login page).

    Not "not found" and not transient: retrying will not help.  `listings`
    names every listing tried (`ListingStatus` items) so the core can show
    which ones work for the identity.
    """

    default_message = "The provider no longer serves this listing to this app."

    def __init__(self, user_message: str | None = None, *, status: int | None = 302, listings: tuple = ()):
        super().__init__(user_message, status=status)
        self.listings = tuple(listings)


class InvalidRequestError(ProviderError):
    default_message = "The provider rejected the request."


class TransientError(ProviderError):
    """Worth retrying later: server errors, timeouts, network failures."""

    transient = True
    default_message = "The provider could not be reached; try again shortly."


class RateLimitedError(TransientError):
    default_message = "Rate limited by the provider; try again shortly."

    def __init__(self, user_message: str | None = None, *, retry_after: float | None = None, status: int | None = 429):
        super().__init__(user_message, status=status)
        self.retry_after = retry_after


class NotConfiguredError(ProviderError):
    """The provider's settings are missing or invalid (an operator problem, not the identity's)."""

    default_message = "This provider is not configured: check its PROVIDER_* settings."


class SendCooldownError(RateLimitedError):
    """The provider refuses this identity's sends for a while ("you are doing that too much").

    Unlike the app-wide request budget of `RateLimitedError`, this is about one
    account: `retry_after` (seconds) is how long that identity must not send.
    """

    default_message = "The provider asks this identity to wait before sending again."
