"""Errors of the inbox, each with a message fit to show the user."""


class InboxError(Exception):
    def __init__(self, user_message: str, *, code: str = "invalid"):
        self.user_message = user_message
        self.code = code
        super().__init__(user_message)


class SendError(InboxError):
    """A send that did not happen (or whose outcome must be told); the typed text is kept by the caller."""
