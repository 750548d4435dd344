"""Reddit JSON (Listing / t1 / t2 / t3 / t4 things) onto the provider interface types.

Pure functions over the decoded JSON (requested with `raw_json=1`, so text
carries no HTML entities).  Ids are Reddit's base36 ids without the kind
prefix; a page never fails because of one bad item: it is `Skipped` with a
reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..base import (
    MessagePage,
    PostPage,
    ProfileItemPage,
    RemoteAccount,
    RemoteMessage,
    RemotePost,
    RemoteProfileItem,
    SentMessage,
    Skipped,
    Visibility,
)

DELETED = "[deleted]"
REMOVED = "[removed]"
# Public profile fields worth keeping (JSON-safe, nothing about our own account settings).
ABOUT_FIELDS = ("link_karma", "comment_karma", "total_karma", "icon_img", "snoovatar_img", "verified",
                "has_verified_email", "is_mod", "is_gold", "is_employee", "accept_followers")


class Unmappable(ValueError):
    """An item that cannot be mapped; becomes a `Skipped`."""


def bare_id(name: str | None) -> str | None:
    """`t4_abc` -> `abc` (ids are stored without Reddit's kind prefix)."""
    if not name:
        return None
    return name.split("_", 1)[1] if len(name) > 3 and name[0] == "t" and name[2] == "_" else name


def _when(data: dict, *, required: bool = True) -> datetime | None:
    value = data.get("created_utc")
    if value is None:
        if required:
            raise Unmappable("no creation time")
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise Unmappable("bad creation time") from None


def _person(name) -> str | None:
    return name if isinstance(name, str) and name and name != DELETED else None


def _text(text, *, deleted: bool, removed: bool) -> tuple[str | None, Visibility]:
    """The text and its visibility; the placeholders Reddit puts in place of gone text are not text."""
    if deleted or text == DELETED:
        return None, "deleted_by_author"
    if removed or text == REMOVED:
        return None, "removed"
    return (text if isinstance(text, str) else None), "visible"


def _children(listing) -> list:
    if not isinstance(listing, dict) or listing.get("kind") != "Listing":
        raise Unmappable("not a listing")
    children = (listing.get("data") or {}).get("children")
    if not isinstance(children, list):
        raise Unmappable("a listing without children")
    return children


def _after(listing: dict) -> str | None:
    return (listing.get("data") or {}).get("after") or None


def _thing_id(thing) -> str | None:
    data = thing.get("data") if isinstance(thing, dict) else None
    return data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None


# --------------------------------------------------------------------------- messages
def _message(data: dict) -> RemoteMessage:
    if not data.get("id"):
        raise Unmappable("no id")
    if data.get("was_comment"):
        raise Unmappable("a comment reply, not a private message")
    author = _person(data.get("author"))
    body, visibility = _text(data.get("body"), deleted=data.get("author") == DELETED and data.get("body") == DELETED,
                             removed=False)
    return RemoteMessage(
        external_id=data["id"],
        conversation_external_id=bare_id(data.get("first_message_name")) or data["id"],
        author=author,
        recipient=_person(data.get("dest")),
        sent_at=_when(data),
        body=body,
        subject=data.get("subject"),
        parent_external_id=bare_id(data.get("parent_id")),
        visibility=visibility,
        # Community notices come with no author; admin mail is distinguished.
        is_system=(data.get("author") is None and bool(data.get("subreddit"))) or data.get("distinguished") == "admin",
    )


def message_page(listing: dict) -> MessagePage:
    """A page of messages; threads (`replies`) are flattened, root first, oldest reply next."""
    messages, skipped, other = [], [], 0
    for thing in _children(listing):
        things = [thing]
        replies = thing.get("data", {}).get("replies") if isinstance(thing, dict) else None
        if isinstance(replies, dict):
            try:
                things += _children(replies)
            except Unmappable as exc:
                skipped.append(Skipped(_thing_id(thing), f"replies: {exc}"))
        for item in things:
            try:
                if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                    raise Unmappable("not a thing")
                if item.get("kind") == "t1" or item["data"].get("was_comment"):
                    other += 1  # a comment reply or mention in the inbox listing: not a private message
                    continue
                if item.get("kind") != "t4":
                    raise Unmappable(f"unexpected kind {item.get('kind')!r}")
                messages.append(_message(item["data"]))
            except Unmappable as exc:
                skipped.append(Skipped(_thing_id(item), str(exc)))
    return MessagePage(messages=messages, after=_after(listing), skipped=skipped, other_items=other)


def sent_message(data: dict) -> SentMessage:
    message = _message(data)
    return SentMessage(external_id=message.external_id,
                       conversation_external_id=message.conversation_external_id, sent_at=message.sent_at)


# --------------------------------------------------------------------------- posts
def _absolute(base_url: str, permalink) -> str | None:
    if not isinstance(permalink, str) or not permalink:
        return None
    return permalink if permalink.startswith(("http://", "https://")) else base_url.rstrip("/") + permalink


def _media_urls(data: dict) -> tuple[str, ...]:
    urls = []
    if data.get("post_hint") == "image" and isinstance(data.get("url"), str):
        urls.append(data["url"])
    for image in ((data.get("preview") or {}).get("images") or []):
        source = (image or {}).get("source") or {}
        if isinstance(source.get("url"), str):
            urls.append(source["url"])
    if data.get("is_gallery"):
        for item in (data.get("media_metadata") or {}).values():
            source = (item or {}).get("s") or {}
            if isinstance(source.get("u"), str):
                urls.append(source["u"])
    return tuple(dict.fromkeys(u for u in urls if u.startswith(("http://", "https://"))))


def _post_visibility(data: dict) -> tuple[bool, bool]:
    category = data.get("removed_by_category")
    deleted = category == "deleted" or (data.get("author") == DELETED and data.get("selftext") == DELETED)
    removed = not deleted and bool(category)
    return deleted, removed


def post(data: dict, *, base_url: str) -> RemotePost:
    if not data.get("id") or not data.get("subreddit"):
        raise Unmappable("no id or community")
    deleted, removed = _post_visibility(data)
    body, visibility = _text(data.get("selftext"), deleted=deleted, removed=removed)
    return RemotePost(
        external_id=data["id"],
        location=data["subreddit"],
        url=_absolute(base_url, data.get("permalink")) or data.get("url") or "",
        author=_person(data.get("author")),
        title=data.get("title"),
        body=body or None,
        created_at=_when(data, required=False),
        visibility=visibility,
        score=data.get("score") if isinstance(data.get("score"), int) else None,
        num_comments=data.get("num_comments") if isinstance(data.get("num_comments"), int) else None,
        media_urls=_media_urls(data) if visibility == "visible" else (),
    )


def post_page(listing: dict, *, base_url: str) -> PostPage:
    posts, skipped = [], []
    for thing in _children(listing):
        try:
            if not isinstance(thing, dict) or thing.get("kind") != "t3" or not isinstance(thing.get("data"), dict):
                raise Unmappable("not a post")
            posts.append(post(thing["data"], base_url=base_url))
        except Unmappable as exc:
            skipped.append(Skipped(_thing_id(thing), str(exc)))
    return PostPage(posts=posts, after=_after(listing), skipped=skipped)


# --------------------------------------------------------------------------- profiles
def _comment_item(data: dict, base_url: str) -> RemoteProfileItem:
    if not data.get("id"):
        raise Unmappable("no id")
    deleted = data.get("author") == DELETED and data.get("body") == DELETED
    text, visibility = _text(data.get("body"), deleted=deleted, removed=False)
    url = _absolute(base_url, data.get("permalink"))
    if url is None and isinstance(data.get("link_permalink"), str):
        url = data["link_permalink"].rstrip("/") + f"/{data['id']}/"
    return RemoteProfileItem(external_id=data["id"], item_type="comment", created_at=_when(data, required=False),
                             text=text, location=data.get("subreddit"), url=url, title=data.get("link_title"),
                             visibility=visibility)


def _post_item(data: dict, base_url: str) -> RemoteProfileItem:
    mapped = post(data, base_url=base_url)
    return RemoteProfileItem(external_id=mapped.external_id, item_type="post", created_at=mapped.created_at,
                             text=mapped.body, location=mapped.location, url=mapped.url, title=mapped.title,
                             visibility=mapped.visibility, media_urls=mapped.media_urls)


def profile_item_page(listing: dict, *, base_url: str) -> ProfileItemPage:
    items, skipped = [], []
    for thing in _children(listing):
        try:
            if not isinstance(thing, dict) or not isinstance(thing.get("data"), dict):
                raise Unmappable("not a thing")
            if thing.get("kind") == "t1":
                items.append(_comment_item(thing["data"], base_url))
            elif thing.get("kind") == "t3":
                items.append(_post_item(thing["data"], base_url))
            else:
                raise Unmappable(f"unexpected kind {thing.get('kind')!r}")
        except Unmappable as exc:
            skipped.append(Skipped(_thing_id(thing), str(exc)))
    return ProfileItemPage(items=items, after=_after(listing), skipped=skipped)


def _about(data: dict) -> dict:
    about = {k: data[k] for k in ABOUT_FIELDS if isinstance(data.get(k), (str, int, float, bool))}
    profile = data.get("subreddit") if isinstance(data.get("subreddit"), dict) else {}
    if profile.get("public_description"):
        about["bio"] = profile["public_description"]
    if profile.get("title"):
        about["title"] = profile["title"]
    if isinstance(profile.get("over_18"), bool):
        about["over_18"] = profile["over_18"]
    return about


def account_from_me(data: dict) -> RemoteAccount:
    if not isinstance(data, dict) or not data.get("name"):
        raise Unmappable("no account name")
    return RemoteAccount(username=data["name"], user_id=data.get("id"),
                         status="suspended" if data.get("is_suspended") else "active",
                         created_at=_when(data, required=False), about=_about(data))


def account_from_about(thing: dict) -> RemoteAccount:
    data = thing.get("data") if isinstance(thing, dict) and thing.get("kind") == "t2" else None
    if not isinstance(data, dict):
        raise Unmappable("not an account")
    return account_from_me(data)
