"""A fake OpenAI-compatible model server (real HTTP on 127.0.0.1) for tests.

The `fake_llm` fixture starts it (once per session), resets it per test and points
`INFERENCE_*` / `EMBEDDINGS_*` at it.  Script the next replies, in order::

    fake_llm.reply_json({"summary": "..."})      # a valid completion
    fake_llm.reply_text("not json")               # an invalid completion
    fake_llm.reply_error(500)                     # an HTTP error
    fake_llm.reply_slow(5, {"summary": "..."})    # answers after 5 s (client times out first)

With nothing scripted, a chat completion answers a minimal valid instance of the
requested JSON schema, and embeddings answer deterministic unit vectors of
`fake_llm.dims` numbers (setting it updates EMBEDDINGS_DIMS too): a hashed bag of
words with crude stemming and a few synonyms, so texts sharing words or synonyms
land close and "search by meaning" can be tested.  `fake_llm.requests` holds every request body received
(`fake_llm.chat_requests` only the chat ones), `fake_llm.headers` their headers.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import deque

import pytest

from .http import LocalHTTPServer, QuietHandler


DEFAULT_DIMS = 64
_SYNONYMS = {
    **dict.fromkeys(["hike", "hikes", "hiking", "hiker", "hikers", "trek", "trekking", "walk", "walking"], "hike"),
    **dict.fromkeys(["buddy", "buddies", "partner", "partners", "friend", "friends", "companion", "mate"], "partner"),
    **dict.fromkeys(["job", "jobs", "work", "gig", "employment", "hiring"], "work"),
    **dict.fromkeys(["car", "cars", "vehicle", "auto"], "car"),
}
_STOP = {"a", "an", "the", "for", "with", "to", "of", "and", "or", "in", "on", "my", "this", "up", "i", "you",
         "anyone", "is", "it", "me", "at", "be"}


def _stem(word: str) -> str:
    for suffix in ("ing", "ers", "er", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def bag_of_words_vector(text: str, dims: int) -> list[float]:
    vector = [0.0] * dims
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP] or ["<empty>"]
    for word in words:
        token = _SYNONYMS.get(word) or _stem(word)
        digest = hashlib.sha256(token.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dims] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def instance_of(schema: dict):
    """The smallest value that satisfies our JSON schema subset."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: instance_of(schema["properties"][name]) for name in schema.get("required", [])}
    if kind == "array":
        return [instance_of(schema.get("items", {"type": "string"}))] * schema.get("minItems", 0)
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


class FakeLLM(LocalHTTPServer):
    def __init__(self):
        self._dims = DEFAULT_DIMS
        self._settings = None  # the test's settings, so `dims` follows into EMBEDDINGS_DIMS
        self.model = "fake-model"
        self._script: deque = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.tokenize = False  # True: answer /tokenize like llama-server (one token a word)
        self.tokenize_requests: list[dict] = []
        self.finish_reason = "stop"
        super().__init__(_handler_for(self))

    @property
    def dims(self) -> int:
        return self._dims

    @dims.setter
    def dims(self, value: int):
        self._dims = value
        if self._settings is not None:
            self._settings.EMBEDDINGS_DIMS = value

    # -- scripting --
    def reply_json(self, data: dict, *, prompt_tokens: int = 120, completion_tokens: int = 40):
        self._script.append(("content", json.dumps(data), prompt_tokens, completion_tokens))

    def reply_text(self, text: str, *, prompt_tokens: int = 120, completion_tokens: int = 10):
        self._script.append(("content", text, prompt_tokens, completion_tokens))

    def reply_error(self, status: int = 500, message: str = "internal error"):
        self._script.append(("error", status, message))

    def reply_slow(self, seconds: float, data: dict | None = None):
        self._script.append(("slow", seconds, data))

    def reply_embeddings(self, vectors: list[list[float]], *, reversed_order: bool = False):
        self._script.append(("vectors", vectors, reversed_order))

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if "messages" in r]

    def reset(self):
        self._release.set()  # let any slow handler of the previous test finish now
        self._release = threading.Event()
        self._script.clear()
        self.requests.clear()
        self.headers.clear()
        self._settings = None
        self._dims = DEFAULT_DIMS
        self.tokenize = False
        self.tokenize_requests.clear()
        self.finish_reason = "stop"
        from rediska.llm import forget_tokenizers

        forget_tokenizers()

    def close(self):
        self._release.set()
        super().close()

    # -- answering --
    def _next(self, *, embeddings: bool = False):
        with self._lock:
            if not self._script:
                return None
            step = self._script[0]
            if embeddings and (step[0] == "content" or (step[0] == "slow" and step[2] is not None)):
                return None  # a scripted completion waits for its chat request (indexing runs alongside)
            return self._script.popleft()

    def answer(self, path: str, body: dict) -> tuple[int, dict]:
        step = self._next(embeddings=path.endswith("/embeddings"))
        if step and step[0] == "error":
            return step[1], {"error": {"code": step[1], "message": step[2], "type": "server_error"}}
        if step and step[0] == "slow":
            self._release.wait(step[1])
            step = ("content", json.dumps(step[2] or {}), 1, 1)
        if path.endswith("/embeddings"):
            inputs = body.get("input") or []
            inputs = [inputs] if isinstance(inputs, str) else inputs
            vectors = step[1] if step and step[0] == "vectors" else [self._vector(t) for t in inputs]
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            if step and step[0] == "vectors" and step[2]:
                data.reverse()  # servers may answer out of order; `index` is what counts
            return 200, {
                "object": "list",
                "model": body.get("model") or self.model,
                "data": data,
                "usage": {"prompt_tokens": sum(len(t.split()) for t in inputs), "total_tokens": 0},
            }
        if step is None:
            fmt = body.get("response_format") or {}
            schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {}
            step = ("content", json.dumps(instance_of(schema)), 100, 20)
        _, content, prompt_tokens, completion_tokens = step
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": body.get("model") or self.model,
            "choices": [{"index": 0, "finish_reason": self.finish_reason, "message": {"role": "assistant", "content": content}}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _vector(self, text: str) -> list[float]:
        return bag_of_words_vector(text, self._dims)


def _handler_for(fake: FakeLLM):
    class Handler(QuietHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            if self.path == "/tokenize":  # counted apart: `requests` holds the model calls
                fake.tokenize_requests.append(body)
                if fake.tokenize:
                    tokens = list(range(len(str(body.get("content", "")).split())))
                    self.reply(200, {"Content-Type": "application/json"}, json.dumps({"tokens": tokens}).encode())
                else:
                    self.reply(404, {"Content-Type": "application/json"}, b'{"error": {"code": 404, "message": "File Not Found"}}')
                return
            fake.requests.append(body)
            fake.headers.append(dict(self.headers))
            if self.path not in ("/v1/chat/completions", "/v1/embeddings"):
                status, payload = 404, {"error": {"code": 404, "message": "File Not Found"}}
            else:
                status, payload = fake.answer(self.path, body)
            self.reply(status, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    return Handler


@pytest.fixture(scope="session")
def _fake_llm_server():
    fake = FakeLLM()
    yield fake
    fake.close()


@pytest.fixture
def fake_llm(_fake_llm_server, settings):
    fake = _fake_llm_server
    fake.reset()
    fake._settings = settings
    settings.INFERENCE_URL = fake.url
    settings.INFERENCE_MODEL = fake.model
    settings.INFERENCE_API_KEY = "test-inference-key"
    settings.EMBEDDINGS_URL = fake.url
    settings.EMBEDDINGS_MODEL = "fake-embed"
    settings.EMBEDDINGS_API_KEY = ""
    settings.EMBEDDINGS_DIMS = fake.dims
    settings.LLM_TIMEOUT_SECONDS = 1.0
    settings.LLM_MAX_RETRIES = 2
    settings.LLM_RETRY_BACKOFF_SECONDS = 0.01
    yield fake
    fake.reset()
