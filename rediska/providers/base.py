"""The provider interface: the only shape the core and the apps know.

A provider (one social network) maps its own API onto these plain types.  Apps
never see the provider's client library or JSON; they call a `ProviderSession`
bound to one identity's refresh token, and receive dataclasses.

Timestamps are always timezone-aware UTC.  Text is stored as received (the
provider decodes HTML entities); nothing here is trusted or rendered unescaped.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

AccountStatus = Literal["active", "deleted", "suspended", "unknown"]
Visibility = Literal["visible", "deleted_by_author", "removed", "unknown"]
MessageFolder = Literal["inbox", "sent"]
PostSort = Literal["new", "hot", "top"]
ProfileItemKind = Literal["post", "comment"]


@dataclass(frozen=True)
class TokenSet:
    """What an authorization-code exchange or a refresh returns."""

    access_token: str
    refresh_token: str | None
    scopes: tuple[str, ...]
    expires_in: int | None = None

    def __repr__(self) -> str:  # never leak tokens through logs or tracebacks
        return f"TokenSet(scopes={self.scopes!r}, expires_in={self.expires_in!r})"


@dataclass(frozen=True)
class RemoteAccount:
    """A person on the provider (our identity from `whoami`, or a counterpart)."""

    username: str
    user_id: str | None = None
    status: AccountStatus = "unknown"
    created_at: datetime | None = None
    # Public "about" data worth keeping (karma, bio, icon URL...), JSON-safe.
    about: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteMessage:
    """One private message, flattened out of its thread.

    `conversation_external_id` is the id of the thread's first message, so
    every message of a thread carries the same value; `author` is None when
    the provider no longer knows who wrote it (deleted account) or for
    system notices (`is_system`).
    """

    external_id: str
    conversation_external_id: str
    author: str | None
    recipient: str | None
    sent_at: datetime
    body: str | None
    subject: str | None = None
    parent_external_id: str | None = None
    visibility: Visibility = "visible"
    is_system: bool = False


@dataclass(frozen=True)
class Skipped:
    """An item of a page that could not be mapped; logged, never fatal."""

    external_id: str | None
    reason: str


@dataclass(frozen=True)
class ListingStatus:
    """Whether one of the provider's listings answered for this identity.

    `listing` is the provider's stable name for it, `label` says it in plain
    words, `detail` why it does not work (empty when it does).
    """

    listing: str
    folder: str
    label: str
    works: bool
    detail: str = ""


@dataclass(frozen=True)
class MessagePage:
    messages: list[RemoteMessage]
    after: str | None  # cursor for the next (older) page; None at the end
    skipped: list[Skipped] = field(default_factory=list)
    # Items of the listing that are not private messages (comment replies, mentions): counted, not stored.
    other_items: int = 0
    # The listings asked for this page (the one that served it, and any that refused on the way).
    listings: tuple[ListingStatus, ...] = ()


@dataclass(frozen=True)
class RemotePost:
    external_id: str
    location: str
    url: str
    author: str | None
    title: str | None
    body: str | None
    created_at: datetime | None
    visibility: Visibility = "visible"
    score: int | None = None
    num_comments: int | None = None
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostPage:
    posts: list[RemotePost]
    after: str | None
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class RemoteProfileItem:
    external_id: str
    item_type: ProfileItemKind
    created_at: datetime | None
    text: str | None
    location: str | None = None
    url: str | None = None
    title: str | None = None
    visibility: Visibility = "visible"
    media_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProfileItemPage:
    items: list[RemoteProfileItem]
    after: str | None
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class SentMessage:
    """What the provider tells us about a message we just sent."""

    external_id: str | None
    conversation_external_id: str | None
    sent_at: datetime


CAPABILITIES = ("sync_received", "sync_sent", "send", "browse", "read_profiles")


@dataclass(frozen=True)
class Capabilities:
    """What one identity can do, from how it is connected.  Pages and services ask this,
    never the kind of connection; `reasons` says in plain words why a False one does not work."""

    sync_received: bool = False
    sync_sent: bool = False
    send: bool = False
    browse: bool = False
    read_profiles: bool = False
    reasons: dict[str, str] = field(default_factory=dict)

    @classmethod
    def none(cls, reason: str) -> Capabilities:
        return cls(reasons={name: reason for name in CAPABILITIES})

    def why_not(self, name: str) -> str:
        """The reason `name` does not work ("" when it does)."""
        if getattr(self, name):
            return ""
        return self.reasons.get(name) or "This identity's connection does not allow it."

    @property
    def can_sync(self) -> bool:
        return self.sync_received or self.sync_sent


class ProviderSession(abc.ABC):
    """Operations on behalf of one identity (bound to its refresh token).

    Every method may raise a `rediska.providers.errors.ProviderError`
    subclass; nothing else escapes.  Rate limiting is applied inside.
    """

    @abc.abstractmethod
    def whoami(self) -> RemoteAccount: ...

    @abc.abstractmethod
    def list_messages(
        self, folder: MessageFolder, *, after: str | None = None, limit: int = 100
    ) -> MessagePage:
        """One page of the folder, newest first; `after` is the previous page's cursor."""

    def iter_message_pages(
        self, folder: MessageFolder, *, after: str | None = None, limit: int = 100
    ) -> Iterator[MessagePage]:
        while True:
            page = self.list_messages(folder, after=after, limit=limit)
            yield page
            if not page.after or page.after == after:
                return
            after = page.after

    @abc.abstractmethod
    def send_message(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        reply_to_external_id: str | None = None,
    ) -> SentMessage:
        """Send a new message (`to`, `subject`) or a reply in an existing thread."""

    @abc.abstractmethod
    def list_posts(
        self,
        location: str,
        *,
        sort: PostSort = "new",
        query: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> PostPage:
        """A page of posts in a location, or of a keyword search inside it."""

    @abc.abstractmethod
    def fetch_post(self, external_id: str) -> RemotePost: ...

    @abc.abstractmethod
    def fetch_profile(self, username: str) -> RemoteAccount: ...

    @abc.abstractmethod
    def fetch_profile_items(
        self,
        username: str,
        kind: ProfileItemKind,
        *,
        after: str | None = None,
        limit: int = 100,
    ) -> ProfileItemPage: ...


class Provider(abc.ABC):
    """One social network.  Stateless; sessions carry the per-identity token."""

    provider_id: str
    display_name: str
    # Hosts whose media may be downloaded (exact host or a subdomain of it).
    media_hosts: tuple[str, ...] = ()

    @abc.abstractmethod
    def is_configured(self) -> bool:
        """True when the app credentials needed to talk to the provider are set."""

    @abc.abstractmethod
    def authorize_url(self, state: str) -> str:
        """Where to send the browser to grant access (authorization-code flow)."""

    @abc.abstractmethod
    def exchange_code(self, code: str) -> TokenSet:
        """Trade the callback's code for tokens (raises AuthError when refused)."""

    @abc.abstractmethod
    def refresh(self, refresh_token: str) -> TokenSet:
        """Obtain a fresh access token; raises AuthError when the token is revoked."""

    @abc.abstractmethod
    def session(self, refresh_token: str) -> ProviderSession: ...

    # --- ways in besides OAuth (a provider overrides what it supports) ---------------------
    accepts_feed_tokens: bool = False

    def capabilities(self, *, oauth: bool, feed_token: bool) -> Capabilities:
        """What an identity connected this way can do (OAuth alone: everything)."""
        if oauth:
            return Capabilities(True, True, True, True, True)
        return Capabilities.none(f"This identity is not connected to {self.display_name}: connect it to use this.")

    def connect_help(self) -> dict[str, str]:
        """Plain words for the connect page: where the user finds each value on the provider's site."""
        return {}

    def parse_feed_token(self, text: str, username: str | None = None) -> tuple[str, str]:
        """(username, token) from a pasted feed URL or a bare token; InvalidRequestError when it is neither."""
        raise NotImplementedError

    def feed_session(self, username: str, token: str) -> ProviderSession:
        raise NotImplementedError

    def compose_url(self, *, to: str, subject: str, body: str) -> str | None:
        """The provider's own compose page prefilled with this message (the user presses Send there)."""
        return None

    def export_format(self) -> ExportFormat | None:
        """The layout of the data export this provider hands users (None: it has none)."""
        return None

    def is_media_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in self.media_hosts)


# --- data exports ---------------------------------------------------------------------
# The archive a provider hands a user on request (a ZIP of CSV tables).  The
# provider says which file is which table and maps rows; reading the ZIP
# safely and storing the rows is the core's and the apps' job.

ExportTable = Literal["messages", "chats", "posts", "comments"]


class ExportRowError(ValueError):
    """One row of an export that cannot be used; the message is the reason, in plain words."""


@dataclass(frozen=True)
class ChatLine:
    """One line of a chat, as an export lists it (chats have no API)."""

    external_id: str
    channel_id: str  # the chat it belongs to, in the form stored as a conversation id
    author: str | None
    sent_at: datetime
    body: str | None
    direct: bool | None  # one-to-one chat; None when the export does not say
    kind: str  # the export's own word for the type of chat, for summaries
    channel_name: str | None = None


class ExportFormat(abc.ABC):
    """How one provider's data export is laid out: CSV tables read by header name."""

    @abc.abstractmethod
    def table_of(self, member_name: str) -> ExportTable | None:
        """Which table a file of the export holds (None: not one Rediska reads)."""

    @abc.abstractmethod
    def required_columns(self, table: ExportTable) -> frozenset[str]: ...

    @abc.abstractmethod
    def names_in(self, table: ExportTable, row: dict) -> tuple[str, ...]:
        """The usernames a row names (to tell whose export it is)."""

    @abc.abstractmethod
    def message(self, row: dict) -> RemoteMessage:
        """A row of a messages table (ExportRowError when unusable)."""

    @abc.abstractmethod
    def chat_line(self, row: dict) -> ChatLine: ...

    @abc.abstractmethod
    def profile_item(self, table: ExportTable, row: dict) -> RemoteProfileItem: ...
