"""A recording HTTP server that answers like Elasticsearch 8 (real HTTP on 127.0.0.1).

It keeps indices and documents in memory well enough for the backend's round
trips (create/delete index, mapping, count, bulk index/update/delete, mget,
refresh) and records every request as `(method, path, query, body)` in
`fake.requests` (`body` is the parsed JSON, or a list for NDJSON bulk bodies).
Searches answer the next scripted reply (`fake.reply_search(ids, scores=None)`)
or no hits.  `fake.fail(status, error_type, count=1)` makes the next requests fail.
It does not rank or filter: request *shapes* are what the tests check.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.http import LocalHTTPServer, QuietHandler


class FakeElastic(LocalHTTPServer):
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        super().__init__(_handler_for(self))

    def reset(self):
        self.indices: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict, object]] = []
        self._search_replies: deque = deque()
        self._failures: deque = deque()

    # --- control ---
    def reply_search(self, ids: list[str], scores: list[float] | None = None):
        self._search_replies.append((ids, scores))

    def fail(self, status: int, error_type: str = "exception", count: int = 1):
        for _ in range(count):
            self._failures.append((status, error_type))

    def bodies(self, method: str, path_suffix: str) -> list:
        return [body for m, p, _, body in self.requests if m == method and p.endswith(path_suffix)]

    # --- answering ---
    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, dict]:
        with self.lock:
            self.requests.append((method, path, query, body))
            if self._failures:
                status, kind = self._failures.popleft()
                return status, {"error": {"type": kind, "reason": kind}, "status": status}
            parts = [p for p in path.split("/") if p]
            if parts == ["_bulk"]:
                return 200, self._bulk(body, None)
            if not parts:
                return 200, {"version": {"number": "8.14.0"}, "tagline": "You Know, for Search"}
            name, action = parts[0], (parts[1] if len(parts) > 1 else None)
            index = self.indices.get(name)
            if action is None and method == "PUT":
                if index is not None:
                    return 400, {"error": {"type": "resource_already_exists_exception"}, "status": 400}
                self.indices[name] = {"body": body, "docs": {}}
                return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
            if index is None:
                return 404, {"error": {"type": "index_not_found_exception", "index": name}, "status": 404}
            if action is None and method == "DELETE":
                del self.indices[name]
                return 200, {"acknowledged": True}
            if action == "_mapping" and method == "PUT":  # only `_meta` changes in our use
                index["body"]["mappings"]["_meta"] = body.get("_meta")
                return 200, {"acknowledged": True}
            if action == "_mapping":
                return 200, {name: {"mappings": index["body"]["mappings"]}}
            if action == "_count":
                return 200, {"count": len(index["docs"])}
            if action == "_refresh":
                return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
            if action == "_bulk":
                return 200, self._bulk(body, name)
            if action == "_mget":
                return 200, {"docs": [self._get(name, doc_id, query) for doc_id in body.get("ids", [])]}
            if action == "_search":
                return 200, self._search(name, body)
            return 400, {"error": {"type": "unsupported_in_fake", "reason": path}, "status": 400}

    def _get(self, index, doc_id, query):
        doc = self.indices[index]["docs"].get(doc_id)
        if doc is None:
            return {"_index": index, "_id": doc_id, "found": False}
        includes = (query.get("_source_includes") or [""])[0]
        source = {k: v for k, v in doc.items() if not includes or k in includes.split(",")}
        return {"_index": index, "_id": doc_id, "_version": 1, "found": True, "_source": source}

    def _bulk(self, lines, default_index):
        items = []
        it = iter(lines)
        for action_line in it:
            (op, meta), = action_line.items()
            index = self.indices.get(meta.get("_index") or default_index)
            doc_id = meta["_id"]
            if index is None:
                items.append({op: {"_id": doc_id, "status": 404, "error": {"type": "index_not_found_exception"}}})
                if op != "delete":
                    next(it)
                continue
            docs = index["docs"]
            if op == "index":
                result = "updated" if doc_id in docs else "created"
                docs[doc_id] = next(it)
                items.append({op: {"_id": doc_id, "status": 200 if result == "updated" else 201, "result": result}})
            elif op == "update":
                payload = next(it)
                if doc_id not in docs:
                    items.append({op: {"_id": doc_id, "status": 404, "error": {"type": "document_missing_exception"}}})
                elif "doc" in payload:
                    docs[doc_id].update(payload["doc"])
                    items.append({op: {"_id": doc_id, "status": 200, "result": "updated"}})
                else:  # our only script: set the embedding when the content hash still matches
                    params = payload["script"]["params"]
                    if docs[doc_id].get("content_hash") == params["content_hash"]:
                        docs[doc_id]["embedding"] = params["embedding"]
                        docs[doc_id]["embedded_hash"] = params["content_hash"]
                        items.append({op: {"_id": doc_id, "status": 200, "result": "updated"}})
                    else:
                        items.append({op: {"_id": doc_id, "status": 200, "result": "noop"}})
            elif op == "delete":
                found = docs.pop(doc_id, None) is not None
                items.append({op: {"_id": doc_id, "status": 200 if found else 404, "result": "deleted" if found else "not_found"}})
        return {"took": 1, "errors": any("error" in next(iter(i.values())) for i in items), "items": items}

    def _search(self, index, body):
        docs = self.indices[index]["docs"]
        ids, scores = self._search_replies.popleft() if self._search_replies else ([], None)
        hits = []
        wants_vectors = isinstance(body.get("_source"), list) and "embedding" in body["_source"]
        for rank, doc_id in enumerate(ids):
            source = {k: v for k, v in docs.get(doc_id, {}).items() if wants_vectors or k != "embedding"}
            score = scores[rank] if scores else float(len(ids) - rank)
            hits.append({"_index": index, "_id": doc_id, "_score": score, "_source": source})
        return {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None, "hits": hits},
        }


def _handler_for(fake: FakeElastic):
    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self):
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = None
            if raw:
                text = raw.decode()
                if url.path.endswith("/_bulk"):
                    body = [json.loads(line) for line in text.splitlines() if line.strip()]
                else:
                    body = json.loads(text)
            status, payload = fake.handle(self.command, url.path, parse_qs(url.query), body)
            data = b"" if self.command == "HEAD" else json.dumps(payload).encode()
            self.reply(status, {"X-Elastic-Product": "Elasticsearch",
                                "Content-Type": "application/vnd.elasticsearch+json;compatible-with=8"}, data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    return Handler


@pytest.fixture(scope="session")
def _fake_elastic_server():
    fake = FakeElastic()
    yield fake
    fake.close()


@pytest.fixture
def fake_elastic(_fake_elastic_server):
    _fake_elastic_server.reset()
    yield _fake_elastic_server
    _fake_elastic_server.reset()
