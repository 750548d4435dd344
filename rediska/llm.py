"""The one client for OpenAI-compatible model servers (llama.cpp's `llama-server`).

Only this module speaks HTTP to the inference and embeddings servers.

Chat with structured output::

    from rediska.llm import inference_client, LLMError

    result = inference_client().chat_json(
        messages, schema=SCHEMA, operation="profile_summary", prompt_version="v1", job_id=job.id
    )
    result.data        # the validated dict
    result.call_ids    # ids of the recorded calls (see "Recording" below)

The JSON schema is sent as `response_format={"type": "json_schema", ...}`, which
llama.cpp turns into a grammar (and OpenAI-style servers honour too).  The reply is
validated here; on a mismatch the model is asked once more with the validation error,
then `LLMValidationError` is raised with the raw reply kept (`.raw`).

Embeddings::

    client = embeddings_client()          # raises LLMNotConfigured when EMBEDDINGS_URL is empty
    vectors = client.embed(texts, job_id=job.id)   # batched POST /v1/embeddings
    client.model, client.dims

Errors: every failure is an `LLMError` with `transient` (worth retrying the job
later: connection errors, timeouts, 5xx after our own retries) and a plain-words
`user_message`.  Messages never contain the API key or the server URL's credentials.

Recording: the core must not import the apps, so every request to a model server
(each attempt, whatever its outcome) is reported as an `LLMCallRecord` to the
listeners added with `add_call_listener(fn)`.  `agents` installs the listener that
stores the `llm_calls` rows; a listener's return value (the row id) is collected in
`ChatResult.call_ids` / `EmbeddingsClient.last_call_ids` / `LLMError.call_ids`.
Pass `job_id=` to link the calls to the job that made them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from jsonschema import Draft202012Validator

log = logging.getLogger(__name__)


# --- errors -----------------------------------------------------------------


class LLMError(Exception):
    transient = False
    default_message = "The language model could not answer."

    def __init__(self, user_message: str | None = None, *, call_ids: list | None = None):
        self.user_message = user_message or self.default_message
        self.call_ids = list(call_ids or [])
        super().__init__(self.user_message)


class LLMNotConfigured(LLMError):
    default_message = "No language model is configured (set INFERENCE_URL)."


class LLMTransportError(LLMError):
    """Connection refused, timeout or a 5xx that outlived our retries."""

    transient = True
    default_message = "The language model server could not be reached; try again shortly."


class LLMRequestError(LLMError):
    """The server refused the request (4xx) or answered something unusable."""


class LLMTruncated(LLMRequestError):
    """The reply was cut at the token limit (`finish_reason: "length"`): incomplete, not retried."""


class LLMValidationError(LLMError):
    """The reply did not match the schema, even after one corrective retry."""

    default_message = "The model's reply did not match the expected format."

    def __init__(self, user_message: str | None = None, *, raw: str, errors: list[str], call_ids=None):
        super().__init__(user_message, call_ids=call_ids)
        self.raw = raw
        self.errors = errors


# --- recording --------------------------------------------------------------


@dataclass
class LLMCallRecord:
    operation: str
    model: str
    prompt_version: str
    endpoint: str  # "chat" | "embeddings"
    request: dict  # the JSON body sent (never headers, so never the key)
    response_text: str | None
    status: str  # "ok" | "invalid" | "error"
    error: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int = 0
    job_id: int | None = None
    attempt: int = 1


CallListener = Callable[[LLMCallRecord], Any]
_listeners: list[CallListener] = []


def add_call_listener(fn: CallListener) -> None:
    if fn not in _listeners:
        _listeners.append(fn)


def remove_call_listener(fn: CallListener) -> None:
    if fn in _listeners:
        _listeners.remove(fn)


def _emit(record: LLMCallRecord) -> list:
    ids = []
    for fn in list(_listeners):
        try:
            result = fn(record)
        except Exception:  # recording must never turn a good answer into a failure
            log.exception("LLM call listener failed")
            continue
        if result is not None:
            ids.append(result)
    return ids


# --- JSON schema validation ------------------------------------------------

_BRIEF = {  # short messages for the checks our schemas use (jsonschema's quote the whole value)
    "type": lambda e: f"expected {' or '.join(e.validator_value) if isinstance(e.validator_value, list) else e.validator_value}, "
                      f"got {type(e.instance).__name__}",
    "required": lambda e: "missing required property " + e.message.split(" is a required property")[0],
    "minimum": lambda e: f"must be >= {e.validator_value}",
    "maximum": lambda e: f"must be <= {e.validator_value}",
    "minLength": lambda e: f"at least {e.validator_value} characters",
    "maxLength": lambda e: f"at most {e.validator_value} characters",
    "minItems": lambda e: f"needs at least {e.validator_value} items",
    "maxItems": lambda e: f"at most {e.validator_value} items",
    "enum": lambda e: f"must be one of {e.validator_value}",
    "additionalProperties": lambda e: "unexpected property " + ", ".join(
        repr(name) for name in e.instance if name not in e.schema.get("properties", {})),
}


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def validate_schema(value, schema: dict) -> list[str]:
    """What is wrong with `value` for the JSON schema (jsonschema, draft 2020-12), one line per
    problem as "$.path: what", in document order; [] when it is valid."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    lines = []
    for error in errors:
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        brief = _BRIEF.get(error.validator)
        lines.append(f"{path}: {brief(error) if brief else error.message[:300]}")
    return lines


_no_tokenizer: set[str] = set()  # servers that answered /tokenize with an error: not asked again
_token_counts: dict[tuple[str, str], int] = {}


def forget_tokenizers() -> None:
    """Forget which servers can count tokens (after INFERENCE_URL changes; tests)."""
    _no_tokenizer.clear()
    _token_counts.clear()


def _server_tokens(base_url: str, text: str) -> int | None:
    key = (base_url, text)
    if key in _token_counts:
        return _token_counts[key]
    try:
        with httpx.Client(timeout=5.0) as http:
            response = http.post(base_url + "/tokenize", json={"content": text})
        if response.status_code == 200:
            count = len(response.json()["tokens"])
            if len(_token_counts) > 4096:
                _token_counts.clear()
            _token_counts[key] = count
            return count
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None  # down right now: estimate this once, ask again next time
    _no_tokenizer.add(base_url)
    return None


def count_tokens(text: str) -> int:
    """Tokens of `text` for the configured chat model: exact from llama-server's /tokenize when
    the server has one, else (no server, no such endpoint, server down) `estimate_tokens`."""
    if not text:
        return 0
    url = getattr(_settings(), "INFERENCE_URL", "")
    base = _api_root(url) if url else ""
    if base and base not in _no_tokenizer:
        exact = _server_tokens(base, text)
        if exact is not None:
            return exact
    return estimate_tokens(text)


def estimate_tokens(text: str) -> int:
    """A deliberately pessimistic token count (no tokenizer here): about 3 characters
    a token for Latin text, and a token a UTF-8 byte pair for other scripts."""
    if not text:
        return 0
    return math.ceil(max(len(text) / 3, len(text.encode("utf-8")) / 2.5))


# --- clients ----------------------------------------------------------------


@dataclass
class ChatResult:
    data: dict
    raw: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    messages: list[dict]
    prompt_version: str
    attempts: int = 1
    call_ids: list = field(default_factory=list)
    params: dict = field(default_factory=dict)  # the sampling parameters sent


def _api_root(url: str) -> str:
    # Accept "http://host:8080", ".../" and ".../v1" alike.
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _safe_host(url: str) -> str:
    parts = urlsplit(url)
    return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else "the server"


class _HTTPClient:
    """Shared transport: auth header, timeouts, retries with backoff + jitter."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff: float = 0.5,
    ):
        self.base_url = _api_root(base_url)
        self.model = model
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(host={_safe_host(self.base_url)!r}, model={self.model!r})"

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _post(self, path: str, body: dict, record: LLMCallRecord) -> tuple[dict, list, LLMCallRecord]:
        """POST with retries; returns (parsed JSON, ids of the failed attempts' records,
        the successful attempt's record for the caller to complete and emit)."""
        host = _safe_host(self.base_url)
        call_ids: list = []
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            error: LLMError | None = None
            text = None
            try:
                with httpx.Client(timeout=self.timeout) as http:
                    response = http.post(self.base_url + path, json=body, headers=self._headers())
                text = response.text
                if response.status_code >= 500 or response.status_code == 429:  # 429/503: busy or loading
                    error = LLMTransportError(f"The model server at {host} failed (HTTP {response.status_code}).")
                elif response.status_code >= 400:
                    reason = _server_message(text).rstrip(".")
                    hint = (
                        " Set LLM_CONTEXT_TOKENS to the context size the server runs with (llama-server -c)."
                        if "context" in reason.lower() else ""
                    )
                    error = LLMRequestError(
                        f"The model server at {host} refused the request (HTTP {response.status_code}): {reason}.{hint}"
                    )
            except httpx.TimeoutException:
                error = LLMTransportError(f"The model server at {host} did not answer within {self.timeout:g} s.")
            except httpx.TransportError:
                error = LLMTransportError(f"The model server at {host} could not be reached.")
            latency_ms = int((time.monotonic() - started) * 1000)

            payload = None
            if error is None:
                try:
                    payload = response.json()
                except ValueError:
                    error = LLMRequestError(f"The model server at {host} did not answer with JSON.")

            rec = dataclasses.replace(record, attempt=attempt)
            rec.latency_ms = latency_ms
            rec.response_text = text
            if error is not None:
                rec.status, rec.error = "error", error.user_message
                call_ids += _emit(rec)
                if error.transient and attempt <= self.max_retries:
                    time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 2))
                    continue
                error.call_ids = call_ids
                raise error
            return payload, call_ids, rec


def _server_message(text: str | None) -> str:
    try:
        message = json.loads(text or "")["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = (text or "").strip()
    return str(message)[:300] or "no reason given"


class InferenceClient(_HTTPClient):
    def __init__(self, *args, max_reply_tokens: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_reply_tokens = max_reply_tokens  # LLM_MAX_REPLY_TOKENS: raises every operation's own limit

    def chat_json(
        self,
        messages: list[dict],
        *,
        schema: dict,
        operation: str,
        prompt_version: str,
        job_id: int | None = None,
        temperature: float = 0.2,
        max_tokens: int = 1024,
    ) -> ChatResult:
        max_tokens = max(max_tokens, self.max_reply_tokens)
        messages = [dict(m) for m in messages]
        call_ids: list = []
        started = time.monotonic()
        for validation_round in (1, 2):
            body = {
                "model": self.model,
                "messages": messages,
                "temperature": temperature,
                "max_tokens": max_tokens,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": operation, "strict": True, "schema": schema},
                },
            }
            base = LLMCallRecord(
                operation=operation,
                model=self.model,
                prompt_version=prompt_version,
                endpoint="chat",
                request=body,
                response_text=None,
                status="ok",
                job_id=job_id,
            )
            try:
                payload, ids, rec = self._post("/v1/chat/completions", body, base)
            except LLMError as exc:
                exc.call_ids = call_ids + exc.call_ids
                raise
            call_ids += ids
            usage = payload.get("usage") or {}
            rec.prompt_tokens = usage.get("prompt_tokens")
            rec.completion_tokens = usage.get("completion_tokens")
            try:
                raw = payload["choices"][0]["message"]["content"] or ""
                finish = payload["choices"][0].get("finish_reason")
            except (KeyError, IndexError, TypeError, AttributeError):
                rec.status, rec.error = "error", "reply has no choices[0].message.content"
                call_ids += _emit(rec)
                raise LLMRequestError("The model server answered without a message.", call_ids=call_ids)
            rec.response_text = raw
            if finish == "length":
                # Asking again would be cut at the same place: say which setting to raise.
                rec.status, rec.error = "invalid", f"reply cut at the token limit (max_tokens {max_tokens})"
                call_ids += _emit(rec)
                raise LLMTruncated(
                    f"The model's reply was cut off at its limit of {max_tokens} tokens before it was complete: "
                    "raise LLM_MAX_REPLY_TOKENS (and the server's context, llama-server -c) and try again.",
                    call_ids=call_ids,
                )
            errors = _parse_and_validate(raw, schema)
            if not errors[1]:
                call_ids += _emit(rec)
                return ChatResult(
                    data=errors[0],
                    raw=raw,
                    model=payload.get("model") or self.model,
                    prompt_tokens=rec.prompt_tokens,
                    completion_tokens=rec.completion_tokens,
                    latency_ms=int((time.monotonic() - started) * 1000),
                    messages=messages,
                    prompt_version=prompt_version,
                    attempts=validation_round,
                    call_ids=call_ids,
                    params={"temperature": temperature, "max_tokens": max_tokens},
                )
            rec.status, rec.error = "invalid", "; ".join(errors[1])[:2000]
            call_ids += _emit(rec)
            if validation_round == 2:
                raise LLMValidationError(
                    f"The model's reply did not match the expected format twice ({'; '.join(errors[1])[:300]}); "
                    "its raw reply is kept with the recorded model calls.",
                    raw=raw, errors=errors[1], call_ids=call_ids,
                )
            # One corrective round: show the model its reply and what was wrong with it.
            messages = messages + [
                {"role": "assistant", "content": raw},
                {
                    "role": "user",
                    "content": "Your reply was not valid for the required JSON schema: "
                    + "; ".join(errors[1])[:1000]
                    + ". Answer again with only a JSON object that matches the schema.",
                },
            ]
        raise AssertionError("unreachable")


def _parse_and_validate(raw: str, schema: dict) -> tuple[Any, list[str]]:
    text = raw.strip()
    # Some models wrap JSON in a Markdown fence even when asked not to.
    if text.startswith("```"):
        text = text.strip("`")
        text = text[4:] if text.startswith("json") else text
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, [f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"]
    return data, validate_schema(data, schema)


class EmbeddingsClient(_HTTPClient):
    def __init__(self, *args, dims: int, batch_size: int = 32, **kwargs):
        super().__init__(*args, **kwargs)
        self.dims = dims
        self.batch_size = batch_size
        self.last_call_ids: list = []

    def embed(self, texts: list[str], *, job_id: int | None = None, operation: str = "embed") -> list[list[float]]:
        self.last_call_ids = []
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            body = {"model": self.model, "input": batch}
            base = LLMCallRecord(
                operation=operation,
                model=self.model,
                prompt_version="",
                endpoint="embeddings",
                request=body,
                response_text=None,
                status="ok",
                job_id=job_id,
            )
            try:
                payload, ids, rec = self._post("/v1/embeddings", body, base)
            except LLMError as exc:
                exc.call_ids = self.last_call_ids + exc.call_ids
                raise
            self.last_call_ids += ids
            usage = payload.get("usage") or {}
            rec.prompt_tokens = usage.get("prompt_tokens")
            # Vectors are not worth keeping in the call log: their count and size say enough.
            rec.response_text = None
            try:
                items = sorted(payload["data"], key=lambda d: d.get("index", 0))
                batch_vectors = [[float(x) for x in item["embedding"]] for item in items]
            except (KeyError, TypeError, ValueError):
                batch_vectors = None
            error = None
            if batch_vectors is None or len(batch_vectors) != len(batch):
                error = LLMRequestError("The embeddings server answered without one vector per text.")
            elif any(len(v) != self.dims for v in batch_vectors):
                got = next(len(v) for v in batch_vectors if len(v) != self.dims)
                error = LLMRequestError(
                    f"The embeddings model returns {got} dimensions but EMBEDDINGS_DIMS is {self.dims}."
                )
            if error:
                rec.status, rec.error = "error", error.user_message
                self.last_call_ids += _emit(rec)
                error.call_ids = self.last_call_ids
                raise error
            rec.response_text = json.dumps({"vectors": len(batch_vectors), "dims": self.dims})
            self.last_call_ids += _emit(rec)
            vectors += batch_vectors
        return vectors


def _settings():
    from django.conf import settings

    return settings


def inference_configured() -> bool:
    return bool(getattr(_settings(), "INFERENCE_URL", ""))


def inference_client() -> InferenceClient:
    s = _settings()
    if not getattr(s, "INFERENCE_URL", ""):
        raise LLMNotConfigured()
    return InferenceClient(
        s.INFERENCE_URL,
        s.INFERENCE_MODEL,
        s.INFERENCE_API_KEY,
        timeout=float(s.LLM_TIMEOUT_SECONDS),
        max_retries=int(s.LLM_MAX_RETRIES),
        backoff=float(getattr(s, "LLM_RETRY_BACKOFF_SECONDS", 0.5)),
        max_reply_tokens=int(getattr(s, "LLM_MAX_REPLY_TOKENS", 0)),
    )


def embeddings_client() -> EmbeddingsClient:
    s = _settings()
    if not getattr(s, "EMBEDDINGS_URL", ""):
        raise LLMNotConfigured("No embeddings model is configured (set EMBEDDINGS_URL).")
    return EmbeddingsClient(
        s.EMBEDDINGS_URL,
        s.EMBEDDINGS_MODEL,
        s.EMBEDDINGS_API_KEY,
        dims=int(s.EMBEDDINGS_DIMS),
        timeout=float(s.LLM_TIMEOUT_SECONDS),
        max_retries=int(s.LLM_MAX_RETRIES),
        backoff=float(getattr(s, "LLM_RETRY_BACKOFF_SECONDS", 0.5)),
    )
