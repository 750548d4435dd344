"""Bad input on every URL: a clear 4xx (or a page with a form error), never a 500,
and a refused write leaves the stored data exactly as it was.

The sweep walks the whole URL conf, fills each URL's path parameters with the id
of a real object and with ids that do not exist, and sends junk query strings and
junk bodies with and without `HX-Request` and `Accept: application/json`.  Each
request runs in a savepoint that is rolled back afterwards, so every request sees
the same data set however the one before it ended.  A refusal (4xx, a redirect
with an error message, a page with form errors) must leave every table as it was.
A 502/503 with its own reason is allowed: that is a well-formed action the provider
refused (e.g. a reply from an identity with no stored access).
"""

from __future__ import annotations

import re
import traceback
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.contrib import messages
from django.db import connection, transaction
from django.forms import BaseForm
from django.test.utils import ContextList
from django.urls import URLResolver, get_resolver

from tests.factories import (
    ConversationFactory,
    JobFactory,
    LeadPostFactory,
    MessageFactory,
    ProfileItemFactory,
    ProfileSnapshotFactory,
)

pytestmark = pytest.mark.django_db

SKIPPED = {"logout"}  # logging out is not bad input; it would end the sweep's session

# Which object each path parameter names, by URL name (pk) or by parameter name.
OBJECT_OF = {
    "job_detail": "job",
    "identities:detail": "identity", "identities:edit": "identity", "identities:set_default": "identity",
    "identities:deactivate": "identity", "identities:reconnect": "identity",
    "identities:dnc_remove": "dnc",
    "identities:feed_token": "identity", "identities:feed_token_remove": "identity",
    "inbox:conversation": "conversation", "inbox:reply": "conversation",
    "inbox:conversation_hidden": "conversation", "inbox:messages_hidden": "conversation",
    "inbox:compose_on_site": "conversation", "inbox:sent_by_hand": "conversation",
    "inbox:conversation_read": "conversation", "inbox:conversation_snooze": "conversation",
    "inbox:conversation_unsnooze": "conversation", "inbox:conversation_follow_up": "conversation",
    "inbox:conversation_follow_up_clear": "conversation",
    "leads:lead_detail": "lead", "leads:lead_status": "lead", "leads:lead_refresh": "lead",
    "leads:person": "account", "leads:person_fetch": "account", "leads:person_dnc": "account",
    "leads:image": "attachment",
    "leads:watch_edit": "watch", "leads:watch_resume": "watch", "leads:watch_run": "watch",
    "leads:watch_delete": "watch",
    "agents:draft_detail": "draft", "agents:draft_discard": "draft", "agents:draft_regenerate": "draft",
    "agents:snapshot_detail": "snapshot", "agents:call_detail": "call",
    "inbox:conversation_label_add": "conversation", "inbox:conversation_label_remove": "conversation",
    "label_id": "label", "inbox:note_delete": "note", "inbox:saved_reply_edit": "saved_reply",
    "inbox:saved_reply_delete": "saved_reply", "inbox:saved_reply_fill": "saved_reply",
    "search:answer": "question",
    "identity_id": "identity", "account_id": "account", "lead_post_id": "lead", "conversation_id": "conversation",
}
MISSING_IDS = ("0", "99999999999999999999999")

# Every field name any form or view reads, so each junk value reaches real parsing code.
KEYS = (
    "page", "q", "identity", "provider", "doc_type", "location", "date_from", "date_to", "include_hidden",
    "include_deleted", "status", "job_type", "job", "snapshot", "operation", "watch", "since", "until",
    "min_score", "new_only", "sort", "direction", "needs_reply", "hidden", "fill", "after", "state", "code",
    "error", "next", "message", "kind", "backup", "body", "subject", "action", "reason", "idempotency_key",
    "display_name", "system_prompt", "tone", "style", "username", "password", "query", "interval_minutes",
    "limit", "enabled", "provider_id", "is_active", "is_default", "feed_link",
    "days", "until_reply", "unread", "confirm", "auto_score",
    "name", "title", "label", "first_messages_per_day", "conversation", "account", "post", "target",
)
LONG = "x" * 10_000
HUGE = str(10**30)


def _all(value):
    return urlencode([(k, value) for k in KEYS])


GET_CASES = [
    ("non-numeric page, foreign next",
     urlencode({"page": "abc", "next": "//evil.example/", "fill": "1", "after": "1"})),
    ("bad dates", urlencode({"since": "2024-13-45", "until": "yesterday", "date_from": "0000-00-00",
                             "date_to": "9999-99-99"})),
    ("huge numbers", urlencode({k: HUGE for k in ("min_score", "job", "snapshot", "after", "fill", "watch",
                                                  "identity", "provider", "message", "page")})),
    ("unknown enum values", urlencode({"status": "nope", "sort": "sideways", "direction": "up", "doc_type": "virus",
                                       "kind": "x", "hidden": "maybe", "needs_reply": "perhaps",
                                       "operation": "drop table", "state": "forged", "code": "x",
                                       "error": "access_denied", "q": '"NEAR(a* ^x: OR) -'})),
    ("wrong types everywhere", _all("not-a-number")),
    ("10,000-char strings", _all(LONG)),
    ("NUL bytes", _all("a\x00b")),
    ("invalid UTF-8 escapes", "page=%ff&q=%ff%fe&status=%c3%28&since=%ff&identity=%ff&%ff=1&next=%ff&state=%ff"),
    ("arrays", urlencode([(k, v) for k in KEYS for v in ("1", "2")]) + "&page[]=1&status[]=new"),
    ("too many fields", "&".join(f"f{i}=1" for i in range(2_500))),
    # str.isdigit() is true for these, int() refuses them
    ("non-ASCII digits", urlencode({k: "\u00b2" for k in ("fill", "after", "page", "min_score", "job", "watch")})),
]

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"
BODY_CASES = [
    ("empty body", b"", _FORM),
    ("wrong types", _all("not-a-number").encode(), _FORM),
    ("unknown choices", urlencode({"status": "bogus", "action": "nuke", "kind": "x", "hidden": "2", "sort": "zzz",
                                   "identity": "abc", "provider_id": "nowhere", "body": "hi",
                                   "idempotency_key": "k1", "message": "abc"}).encode(), _FORM),
    ("huge numbers", urlencode({k: HUGE for k in KEYS}).encode(), _FORM),
    ("negative numbers", urlencode({k: "-5" for k in KEYS}).encode(), _FORM),
    ("enormous values", _all("y" * 20_000).encode(), _FORM),
    ("NUL bytes", _all("a\x00b").encode(), _FORM),
    ("invalid UTF-8", b"body=%ff%fe&status=\xff\xfe&reason=%c3%28&display_name=\xc3&username=%ff&next=%ff", _FORM),
    ("arrays", urlencode([(k, v) for k in KEYS for v in ("1", "2")]).encode(), _FORM),
    ("too many fields", "&".join(f"f{i}=1" for i in range(2_500)).encode(), _FORM),
    ("unknown charset", b"display_name=%ff&reason=x&body=y", _FORM + "; charset=no-such-codec"),
    ("UTF-16 declared, bytes are not", b"display_name=\xff&reason=\xd8", _FORM + "; charset=utf-16"),
    ("malformed JSON", b'{"display_name": ', _JSON),
    ("JSON of the wrong shape", b"[1, 2, 3]", _JSON),
    ("JSON with wrong types", b'{"display_name": {"a": 1}, "is_active": "perhaps", "is_default": [], "body": 5}',
     _JSON),
    ("JSON null", b"null", _JSON),
    ("deeply nested JSON", b"[" * 100_000, _JSON),
    ("binary garbage", b"\xff\xfe\x00garbage\x00", "application/octet-stream"),
    ("multipart without a boundary", b"--x\r\n", "multipart/form-data"),
    ("oversized body", b"a=" + b"z" * (12 * 1024 * 1024), _FORM),
]
PATCH_CASES = [c for c in BODY_CASES if c[0] in {"empty body", "wrong types", "NUL bytes", "invalid UTF-8",
                                                   "unknown charset", "UTF-16 declared, bytes are not",
                                                   "malformed JSON", "JSON of the wrong shape",
                                                   "JSON with wrong types", "JSON null", "deeply nested JSON",
                                                   "enormous values"}]
DELETE_CASES = [c for c in BODY_CASES if c[0] in {"empty body", "malformed JSON"}]

HEADER_SETS = [{}, {"HX-Request": "true"}, {"Accept": "application/json"},
               {"HX-Request": "true", "HX-Target": "\x00", "X-Request-ID": "id\n"}]
UPSTREAM = {502, 503}

# Every table of the app, except the append-only audit log (a refused action may
# record its refusal).
WATCHED_APPS = ("identities", "inbox", "leads", "agents", "search", "rediska")


def _watched_models():
    return [model for label in WATCHED_APPS for model in apps.get_app_config(label).get_models()
            if model._meta.db_table != "audit_log"]


def _snapshot() -> list:
    # Raw SQL: the sweep takes one after every refused request, the ORM would triple its time.
    rows = []
    with connection.cursor() as cursor:
        for model in _watched_models():
            meta = model._meta
            cursor.execute(f"SELECT * FROM {meta.db_table} ORDER BY {meta.pk.column}")
            rows.append(cursor.fetchall())
    return rows


def _patterns(resolver=None, prefix="", namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith("admin/"):
                continue  # Django's own admin
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), ns)
        else:
            yield f"{namespace}{entry.name}", prefix + str(entry.pattern)


ROUTES = sorted((name, route) for name, route in _patterns() if name not in SKIPPED)


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # Argon2 costs a tenth of a second per admin user and per refused login: the sweep makes many.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(auth_client, identity):
    """One active identity with a realistic data set around it."""
    from agents.models import Draft, LLMCall
    from identities.models import DoNotContact
    from inbox.models import Attachment, SavedReply
    from leads.models import Watch, WatchHit

    provider = identity.provider
    conversation = ConversationFactory(identity=identity, provider=provider)
    message = MessageFactory(conversation=conversation, provider=provider)
    MessageFactory(conversation=conversation, provider=provider, direction="out")
    lead = LeadPostFactory(provider=provider)
    account = lead.author_account
    ProfileItemFactory(account=account)
    watch = Watch.objects.create(identity=identity, location="hiking", query="tent")
    WatchHit.objects.create(watch=watch, lead_post=lead, first_seen_at=datetime.now(UTC))
    snapshot = ProfileSnapshotFactory(account=account)
    job = JobFactory(status="failed", last_error="boom", attempts=1)
    call = LLMCall.objects.create(job=job, operation="profile.analyse", endpoint="chat", model="tiny",
                                  request_json={"messages": [{"role": "user", "content": "hi"}]}, status="ok",
                                  response_text="{}")
    draft = Draft.objects.create(kind="reply", identity=identity, account=conversation.counterpart_account,
                                 conversation=conversation, body_text="Sounds good!", llm_call=call)
    Draft.objects.create(kind="intro", identity=identity, account=account, lead_post=lead, subject="Hi",
                         body_text="Hello there")
    dnc = DoNotContact.objects.create(provider=provider, external_username="blocked_one", reason="asked")
    attachment = Attachment.objects.create(message=message, storage_key="ab/missing.png", sha256="0" * 64,
                                           mime_type="image/png", size_bytes=10)
    from inbox.services import labels

    label = labels.add_conversation_label(conversation, "warm")
    labels.add_account_label(account, "warm")
    note = labels.add_note(account, "met at the meetup")
    saved_reply = SavedReply.objects.create(title="Hi", body="Hi {name}")
    return {"identity": identity, "conversation": conversation, "lead": lead, "account": account, "watch": watch,
            "snapshot": snapshot, "job": job, "call": call, "draft": draft, "dnc": dnc, "attachment": attachment,
            "label": label, "note": note, "saved_reply": saved_reply, "question": _archive_question()}


def _archive_question():
    from search.models import ArchiveQuestion

    return ArchiveQuestion.objects.create(question="who lent me a tent?", status="answered", answer_text="A friend [1].",
                                          citations_json=[{"n": 1, "doc_id": "message:1", "title": "t", "url": None}])


def _fill(name: str, route: str, objects: dict | None, missing: str) -> str:
    def value(match):
        kind, param = match.group(1), match.group(2)
        if kind != "int":
            return "x"
        if objects is None:
            return missing
        key = OBJECT_OF.get(name) if param == "pk" else OBJECT_OF.get(param)
        assert key, f"{name}: say in OBJECT_OF which object <{param}> names"
        return str(objects[key].pk)

    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", value, route)


def _send(client, method: str, url: str, headers: dict, query: str = "", body: tuple | None = None):
    if method == "GET":
        return client.get(f"{url}?{query}" if query else url, headers=headers)
    data, content_type = (body[1], body[2]) if body else (b"", _FORM)
    return client.generic(method, url, data=data, content_type=content_type, headers=headers)


def _requests():
    """(method, description, headers, query, body) to send.  Headers rotate over
    the cases; the first GET and the first POST go with every header set."""
    for i, (label, query) in enumerate(GET_CASES):
        for headers in HEADER_SETS if i == 0 else [HEADER_SETS[i % len(HEADER_SETS)]]:
            yield "GET", label, headers, query, None
    for method, cases in (("POST", BODY_CASES), ("PATCH", PATCH_CASES), ("DELETE", DELETE_CASES),
                          ("PUT", BODY_CASES[1:2]), ("HEAD", BODY_CASES[:1]), ("OPTIONS", BODY_CASES[:1])):
        for i, case in enumerate(cases):
            for headers in HEADER_SETS if i == 0 and method == "POST" else [HEADER_SETS[i % len(HEADER_SETS)]]:
                yield method, case[0], headers, "", case


def _sweep(client, url: str, requests) -> tuple[list[str], int]:
    before = _snapshot()
    failures, sent, not_allowed = [], 0, set()
    for method, label, headers, query, body in requests:
        if method in not_allowed:
            continue
        where = f"{method} {url} [{label}] {headers or ''}"
        sent += 1
        client.cookies.pop("messages", None)  # so the messages seen are this request's own
        try:
            with transaction.atomic():
                response = _send(client, method, url, headers, query, body)
                status = response.status_code
                if status == 405:
                    not_allowed.add(method)  # refused before anything read the request
                elif status in UPSTREAM and b"Something went wrong" not in response.content:
                    pass  # a well-formed action an outside service (or its missing access) refused, with the reason
                elif status >= 500:
                    failures.append(f"{where} -> {status}")
                elif _refused(response) and _snapshot() != before:
                    failures.append(f"{where} -> {status} (refused) but the data changed")
                transaction.set_rollback(True)
        except Exception as exc:  # the test client re-raises what a view raised: that would be a 500
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            failures.append(f"{where} -> {type(exc).__name__}: {str(exc)[:200]} ({frame.filename}:{frame.lineno})")
    return failures, sent


def _refused(response) -> bool:
    """A 4xx, or a redirect or page that tells the user what was wrong."""
    if response.status_code >= 400:
        return True
    if any(m.level == messages.ERROR for m in messages.get_messages(response.wsgi_request)):
        return True
    contexts = response.context if isinstance(response.context, ContextList) else [response.context]
    return any(isinstance(value, BaseForm) and value.is_bound and value.errors
               for context in contexts if context is not None for value in context.flatten().values())


def _report(failures: list[str], sent: int) -> str:
    return f"{len(failures)} of {sent} requests failed:\n" + "\n".join(failures)


GROUPS = sorted({name.partition(":")[0] if ":" in name else "rediska" for name, _ in ROUTES})


def _routes_of(group: str):
    return [(n, r) for n, r in ROUTES if (n.partition(":")[0] if ":" in n else "rediska") == group]


@pytest.mark.parametrize("group", GROUPS)
def test_junk_on_existing_objects_is_never_a_500_nor_a_partial_write(auth_client, world, group):
    failures, sent = [], 0
    for name, route in _routes_of(group):
        found, count = _sweep(auth_client, _fill(name, route, world, ""), list(_requests()))
        failures += found
        sent += count
    assert not failures, _report(failures, sent)


@pytest.mark.parametrize("group", [g for g in GROUPS if any("<" in route for _, route in _routes_of(g))])
def test_ids_that_do_not_exist_are_never_a_500(auth_client, world, group):
    failures, sent = [], 0
    for name, route in _routes_of(group):
        if "<" not in route:
            continue
        for i, missing in enumerate(MISSING_IDS):
            headers = HEADER_SETS[i % len(HEADER_SETS)]
            requests = [("GET", "plain", headers, "", None)] + [
                (method, "junk form", headers, "", BODY_CASES[1]) for method in ("POST", "PATCH", "DELETE")]
            found, count = _sweep(auth_client, _fill(name, route, None, missing), requests)
            failures += found
            sent += count
    assert not failures, _report(failures, sent)


@pytest.fixture
def sparse_world(auth_client, identity):
    """Objects in their emptiest real states: every nullable field empty, finished or refused."""
    from agents.models import Draft, LLMCall
    from identities.models import DoNotContact
    from inbox.models import AccountNote, Attachment, Label, SavedReply
    from leads.models import Watch
    from tests.factories import ExternalAccountFactory, IdentityFactory

    provider = identity.provider
    gone = IdentityFactory(provider=provider, is_active=False)
    account = ExternalAccountFactory(remote_status="suspended", external_user_id=None)
    conversation = ConversationFactory(identity=identity, provider=provider, last_activity_at=None, subject=None,
                                       archived_at=datetime.now(UTC), deleted_at=datetime.now(UTC))
    message = MessageFactory(conversation=conversation, provider=provider, body_text=None, identity=None,
                             external_message_id=None, remote_visibility="removed")
    lead = LeadPostFactory(provider=provider, author_account=None, title=None, body_text=None, post_created_at=None,
                           remote_visibility="deleted_by_author")
    job = JobFactory(status="running", progress_json={"done": 3, "total": 0}, payload_json={})
    return {
        "identity": gone, "conversation": conversation, "lead": lead, "account": account,
        "watch": Watch.objects.create(identity=gone, location="empty", enabled=False, paused_reason="Failed 5 times"),
        "snapshot": ProfileSnapshotFactory(account=account, summary_text="", signals_json=None, risk_flags_json=None),
        "job": job,
        "call": LLMCall.objects.create(operation="x", endpoint="embeddings", model="m", request_json={},
                                       status="error", error_detail=None),
        "draft": Draft.objects.create(kind="reply", identity=identity, account=conversation.counterpart_account,
                                      conversation=conversation, body_text="", status="sent"),
        "dnc": DoNotContact.objects.create(provider=provider, external_username="quiet_one", reason=None),
        "attachment": Attachment.objects.create(message=message, storage_key="ab/gone.jpg", sha256="1" * 64,
                                                mime_type="image/jpeg", size_bytes=0, deleted_at=datetime.now(UTC)),
        # A label nothing carries, a one-character note, a saved reply whose placeholder has no value.
        "label": Label.objects.create(name="unused", key="unused"),
        "note": AccountNote.objects.create(account=account, body="x"),
        "saved_reply": SavedReply.objects.create(title="t", body="{post_title}"),
        "question": _empty_archive_question(),
    }


def _empty_archive_question():
    from search.models import ArchiveQuestion

    return ArchiveQuestion.objects.create(question="", status="failed", error=None, answer_text=None)


def test_objects_in_their_emptiest_states_are_never_a_500(auth_client, sparse_world):
    requests = [("GET", "plain", headers, "", None) for headers in HEADER_SETS] + [
        (method, "empty body", headers, "", BODY_CASES[0])
        for method in ("POST", "PATCH", "DELETE") for headers in HEADER_SETS[:2]]
    failures, sent = [], 0
    for name, route in ROUTES:
        found, count = _sweep(auth_client, _fill(name, route, sparse_world, ""), requests)
        failures += found
        sent += count
    assert not failures, _report(failures, sent)


def test_junk_on_the_public_pages_is_never_a_500(client, world):
    """Signed out: the login form itself parses the junk (signed in it only redirects)."""
    client.logout()
    failures, sent = [], 0
    for url in ("/login/", "/healthz"):
        found, count = _sweep(client, url, list(_requests()))
        failures += found
        sent += count
    assert not failures, _report(failures, sent)


def test_the_sweep_covers_the_url_conf():
    assert len(ROUTES) >= 50
    for name, route in ROUTES:
        for param in re.findall(r"<int:(\w+)>", route):
            assert OBJECT_OF.get(name if param == "pk" else param), f"{name}: say in OBJECT_OF what <{param}> names"
