"""The Reddit provider: OAuth (web app, permanent) and a PRAW session per identity.

Folders: `inbox` is `/message/messages` (every private-message thread, received
and sent, newest activity first, each thread flattened root first), `sent` is
`/message/sent` (flat, newest first).  Locations are subreddits.  Ids are
base36 without the kind prefix; cursors (`after`) are Reddit fullnames and
passed back unchanged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..base import (
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
from ..errors import AuthError, InvalidRequestError, NotFoundError, NotConfiguredError, TransientError
from . import client, mappers
from .config import SCOPES, load, load_for_app
from .export import RedditExport

USERNAME = re.compile(r"^[A-Za-z0-9_-]{3,20}$")
COMMUNITY = re.compile(r"^[A-Za-z0-9_]{2,21}(\+[A-Za-z0-9_]{2,21})*$")
FOLDERS = {"inbox": "message/messages", "sent": "message/sent"}
SORTS = ("new", "hot", "top")
MAX_SUBJECT = 100
MAX_BODY = 10_000


def _username(value: str) -> str:
    name = (value or "").strip().removeprefix("/").removeprefix("u/").removeprefix("user/")
    if not USERNAME.match(name):
        raise InvalidRequestError(f"{value!r} is not a Reddit username (3-20 letters, digits, _ or -).")
    return name


def _community(value: str) -> str:
    name = (value or "").strip().removeprefix("/").removeprefix("r/")
    if not COMMUNITY.match(name):
        raise InvalidRequestError(f"{value!r} is not a subreddit name.")
    return name


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
        listing = self._get(FOLDERS[folder], limit=_limit(limit), after=after or None)
        return _mapped(mappers.message_page, listing)

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


def build_provider() -> Provider:
    return RedditProvider()
