"""The Reddit provider: OAuth (web app, permanent) and a PRAW session per identity.

Folders: `inbox` is `/message/messages` (every private-message thread, received
and sent, newest activity first, each thread flattened root first) where Reddit
still serves it; since 2025 it redirects many accounts to the login page, and
then `/message/inbox` (everything received, flat: its comment replies and
mentions are counted, not stored) and at last `/message/unread` serve instead.
`sent` is `/message/sent` (flat, newest first).  Each page says which listings
answered (`MessagePage.listings`).  Locations are subreddits.  Ids are base36
without the kind prefix; a message cursor is the fullname, prefixed
`<listing>:` for a fallback listing, so a resumed walk stays on the listing it
started on.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit

from ..base import (
    Capabilities,
    ListingStatus,
    ExportFormat,
    MessageFolder,
    MessagePage,
    PostPage,
    PostSort,
    ProfileItemKind,
    ProfileItemPage,
    Provider,
    ProviderSession,
    RemoteAccount,
    RemotePost,
    SentMessage,
    TokenSet,
)
from ..errors import (
    AuthError,
    InvalidRequestError,
    ListingUnavailableError,
    NotConfiguredError,
    NotFoundError,
    TransientError,
)
from . import client, feeds, mappers
from .names import SORTS, community as _community, username as _username
from .config import SCOPES, load, load_for_app
from .export import RedditExport

# Per folder, the listings to read in order of preference: (name, path, label).
FOLDERS = {
    "inbox": (("messages", "message/messages", "Private message threads (/message/messages)"),
              ("inbox", "message/inbox", "Everything received (/message/inbox)"),
              ("unread", "message/unread", "Unread messages (/message/unread)")),
    "sent": (("sent", "message/sent", "Sent messages (/message/sent)"),),
}
MAX_SUBJECT = 100
MAX_BODY = 10_000


def _limit(limit: int) -> int:
    return max(1, min(100, int(limit)))


def _mapped(function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except mappers.Unmappable as exc:
        raise TransientError(f"Reddit sent an answer Rediska could not read ({exc}).") from None


class RedditSession(ProviderSession):
    def __init__(self, config, refresh_token: str):
        self._config = config
        self._reddit = client.reddit(config, refresh_token)

    def __repr__(self) -> str:
        return "<RedditSession>"

    def _get(self, path: str, subject: str | None = None, **params):
        with client.translated(subject):
            return self._reddit.request(method="GET", path=path,
                                        params={k: v for k, v in params.items() if v is not None})

    def _post(self, path: str, data: dict, subject: str | None = None):
        with client.translated(subject):
            payload = self._reddit.request(method="POST", path=path, data=data)
        client.raise_json_errors(payload, subject)
        return payload

    def whoami(self) -> RemoteAccount:
        return _mapped(mappers.account_from_me, self._get("api/v1/me"))

    def list_messages(self, folder: MessageFolder, *, after: str | None = None, limit: int = 100) -> MessagePage:
        if folder not in FOLDERS:
            raise InvalidRequestError(f"Unknown message folder {folder!r}.")
        listings = FOLDERS[folder]
        names = [name for name, _, _ in listings]
        start, cursor = 0, after or None
        if cursor:
            name, sep, rest = cursor.partition(":")
            if sep and name in names:
                start, cursor = names.index(name), rest or None
        tried = []
        for name, path, label in listings[start:]:
            try:
                listing = self._get(path, f"the listing /{path}", limit=_limit(limit), after=cursor)
            except ListingUnavailableError as exc:
                tried.append(ListingStatus(name, folder, label, works=False, detail=exc.user_message))
                cursor = None  # one listing's cursor means nothing in the next: start at its top
                continue
            page = _mapped(mappers.message_page, listing)
            tried.append(ListingStatus(name, folder, label, works=True))
            after = f"{name}:{page.after}" if page.after and name != names[0] else page.after
            return replace(page, after=after, listings=tuple(tried))
        raise ListingUnavailableError(
            f"Reddit no longer serves the {folder} folder to this app: "
            + "; ".join(f"/{path}" for _, path, _ in listings[start:]) + " redirect to the login page.",
            listings=tuple(tried))

    def send_message(self, *, to: str, subject: str, body: str,
                     reply_to_external_id: str | None = None) -> SentMessage:
        """Send; a TransientError on a timeout means the message may still have gone out."""
        if not (body or "").strip():
            raise InvalidRequestError("The message is empty.")
        if len(body) > MAX_BODY:
            raise InvalidRequestError(f"The message is longer than Reddit allows ({MAX_BODY} characters).")
        recipient = _username(to) if to else None
        label = f"u/{recipient}" if recipient else None
        if reply_to_external_id:
            payload = self._post("api/comment", {"thing_id": f"t4_{mappers.bare_id(reply_to_external_id)}",
                                                 "text": body}, label)
            things = ((payload.get("json") or {}).get("data") or {}).get("things") or []
            if things and isinstance(things[0], dict) and things[0].get("kind") == "t4":
                return _mapped(mappers.sent_message, things[0]["data"])
            return SentMessage(None, mappers.bare_id(reply_to_external_id), datetime.now(UTC))
        if recipient is None:
            raise InvalidRequestError("A new message needs a recipient.")
        if not (subject or "").strip():
            raise InvalidRequestError("A new message needs a subject.")
        if len(subject) > MAX_SUBJECT:
            raise InvalidRequestError(f"The subject is longer than Reddit allows ({MAX_SUBJECT} characters).")
        self._post("api/compose", {"to": recipient, "subject": subject, "text": body}, label)
        # Compose answers no id: the newest matching message in Sent is the one just sent.
        for message in _mapped(mappers.message_page, self._get("message/sent", limit=10)).messages:
            if ((message.recipient or "").lower() == recipient.lower() and message.subject == subject
                    and (message.body or "").strip() == body.strip()):
                return SentMessage(message.external_id, message.conversation_external_id, message.sent_at)
        return SentMessage(None, None, datetime.now(UTC))

    def list_posts(self, location: str, *, sort: PostSort = "new", query: str | None = None,
                   after: str | None = None, limit: int = 100) -> PostPage:
        name = _community(location)
        if sort not in SORTS:
            raise InvalidRequestError(f"Unknown sort {sort!r} (new, hot or top).")
        top = "all" if sort == "top" else None
        if query is not None and query.strip():
            listing = self._get(f"r/{name}/search", f"r/{name}", q=query.strip(), restrict_sr="on", sort=sort,
                                t="all", limit=_limit(limit), after=after or None)
        else:
            listing = self._get(f"r/{name}/{sort}", f"r/{name}", t=top, limit=_limit(limit), after=after or None)
        return _mapped(mappers.post_page, listing, base_url=self._config.base_url)

    def fetch_post(self, external_id: str) -> RemotePost:
        post_id = mappers.bare_id((external_id or "").strip())
        if not post_id or not re.fullmatch(r"[a-z0-9]{1,13}", post_id):
            raise InvalidRequestError(f"{external_id!r} is not a post id.")
        page = _mapped(mappers.post_page, self._get("api/info", "This post", id=f"t3_{post_id}"),
                       base_url=self._config.base_url)
        if not page.posts:
            raise NotFoundError("This post was not found on Reddit.")
        return page.posts[0]

    def fetch_profile(self, username: str) -> RemoteAccount:
        """The public profile; Reddit answers a deleted and a never-existing account alike (status "deleted")."""
        name = _username(username)
        try:
            about = self._get(f"user/{name}/about", f"u/{name}")
        except NotFoundError:
            return RemoteAccount(username=name, status="deleted")
        return _mapped(mappers.account_from_about, about)

    def fetch_profile_items(self, username: str, kind: ProfileItemKind, *, after: str | None = None,
                            limit: int = 100) -> ProfileItemPage:
        name = _username(username)
        if kind not in ("post", "comment"):
            raise InvalidRequestError(f"Unknown profile item kind {kind!r}.")
        path = f"user/{name}/{'submitted' if kind == 'post' else 'comments'}"
        listing = self._get(path, f"u/{name}", sort="new", limit=_limit(limit), after=after or None)
        return _mapped(mappers.profile_item_page, listing, base_url=self._config.base_url)


class RedditProvider(Provider):
    provider_id = "reddit"
    display_name = "Reddit"

    @property
    def media_hosts(self) -> tuple[str, ...]:
        try:
            return load().media_hosts
        except NotConfiguredError:
            return ()

    def is_configured(self) -> bool:
        try:
            load_for_app()
        except NotConfiguredError:
            return False
        return True

    def authorize_url(self, state: str) -> str:
        config = load_for_app()
        if not config.redirect_uri:
            raise NotConfiguredError("Set PROVIDER_REDDIT_REDIRECT_URI to this app's callback URL.")
        with client.translated():
            return client.authenticator(config).authorize_url("permanent", list(SCOPES), state)

    def exchange_code(self, code: str) -> TokenSet:
        config = load_for_app()
        if not config.redirect_uri:
            raise NotConfiguredError("Set PROVIDER_REDDIT_REDIRECT_URI to this app's callback URL.")
        if not (code or "").strip():
            raise AuthError("Reddit sent no authorization code: connect again.")
        auth = client.authorizer(config)
        with client.translated():
            auth.authorize(code.strip())
        missing = [s for s in SCOPES if s not in (auth.scopes or ())]
        if missing:
            raise AuthError(f"Reddit granted fewer permissions than Rediska needs ({', '.join(missing)}): "
                            "connect again and allow them.")
        if not auth.refresh_token:
            raise AuthError("Reddit granted only temporary access: connect again with permanent access.")
        return TokenSet(access_token=auth.access_token, refresh_token=auth.refresh_token,
                        scopes=tuple(sorted(auth.scopes)))

    def refresh(self, refresh_token: str) -> TokenSet:
        auth = client.authorizer(load_for_app(), refresh_token=refresh_token)
        with client.translated():
            auth.refresh()
        return TokenSet(access_token=auth.access_token, refresh_token=auth.refresh_token or refresh_token,
                        scopes=tuple(sorted(auth.scopes or ())))

    def session(self, refresh_token: str) -> ProviderSession:
        if not refresh_token:
            raise AuthError("This identity has no stored access: reconnect it.")
        return RedditSession(load_for_app(), refresh_token)

    def export_format(self) -> ExportFormat:
        return RedditExport()


    # --- the personal feed token, and Reddit's own compose page ---------------------------
    accepts_feed_tokens = True

    def capabilities(self, *, oauth: bool, feed_token: bool) -> Capabilities:
        if oauth:
            return Capabilities(True, True, True, True, True)
        if feed_token:
            return Capabilities(
                sync_received=True, sync_sent=False, send=False, browse=True, read_profiles=True,
                reasons={"sync_sent": feeds.NO_SENT_FEED,
                         "send": "Sending through Rediska needs a Reddit API app. With the feed token you send on "
                                 "Reddit's own page: “Open on Reddit to send” fills it in, you press Send there."})
        return Capabilities.none("This identity has no connection to Reddit (only imported history): connect it "
                                 "with an API app or your feed token to use this.")

    def connect_help(self) -> dict[str, str]:
        return {
            "oauth": "If you own a Reddit API app (reddit.com/prefs/apps, type “web app”), Rediska signs in with it: "
                     "it can then sync everything and send for you when you press Send.",
            "oauth_missing": "This Rediska has no Reddit API app configured (PROVIDER_REDDIT_CLIENT_ID and "
                             "_SECRET). Reddit no longer grants new ones to most people: use the feed token.",
            "feed_token": "Signed in on Reddit, open reddit.com/prefs/feeds. Under “Private RSS feeds”, copy the "
                          "link of your inbox feed (right-click, copy link) and paste it here: it ends with "
                          "“?feed=…&user=…”. Or paste just the value after “feed=” and type your username. "
                          "Rediska reads your inbox once to check it. It can then keep your inbox current, find "
                          "leads and read profiles; you send on Reddit's own page.",
            "export": "Ask Reddit for a copy of your data at reddit.com/settings/data-request; it arrives by email "
                      "as a ZIP, usually within days. Importing it archives your full history, chats included.",
        }

    def parse_feed_token(self, text: str, username: str | None = None) -> tuple[str, str]:
        host = (urlsplit(load().feed_url).hostname or "").lower()
        return feeds.parse_reference(text, username, feed_hosts=("reddit.com", host))

    def feed_session(self, username: str, token: str) -> ProviderSession:
        config = load()
        if not config.enabled:
            raise NotConfiguredError("This provider is disabled (PROVIDER_REDDIT_ENABLED).")
        if not token:
            raise AuthError("This identity has no stored feed token: add it again.")
        return feeds.FeedSession(config, _username(username), token)

    def compose_url(self, *, to: str, subject: str, body: str) -> str | None:
        query = urlencode({"to": _username(to), "subject": (subject or "")[:MAX_SUBJECT], "message": body})
        return f"{load().base_url}/message/compose/?{query}"


def build_provider() -> Provider:
    return RedditProvider()
