import json
import math
import socket

import pytest

from rediska import llm
from rediska.llm import (
    InferenceClient,
    LLMError,
    LLMNotConfigured,
    LLMTransportError,
    LLMValidationError,
    add_call_listener,
    embeddings_client,
    estimate_tokens,
    inference_client,
    remove_call_listener,
    validate_schema,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": 200},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["summary", "score"],
    "additionalProperties": False,
}

MESSAGES = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Hello"}]


@pytest.fixture(autouse=True)
def _only_our_listeners(monkeypatch):
    # The core client is tested on its own: listeners installed by apps stay out.
    monkeypatch.setattr(llm, "_listeners", [])


@pytest.fixture
def recorded():
    calls = []

    def listener(record):
        calls.append(record)
        return len(calls)

    add_call_listener(listener)
    yield calls
    remove_call_listener(listener)


def chat(**kwargs):
    return inference_client().chat_json(MESSAGES, schema=SCHEMA, operation="test_op", prompt_version="t1", **kwargs)


def test_it_returns_the_validated_reply_with_usage_and_messages(fake_llm):
    fake_llm.reply_json({"summary": "ok", "score": 42}, prompt_tokens=321, completion_tokens=12)

    result = chat()

    assert result.data == {"summary": "ok", "score": 42}
    assert json.loads(result.raw) == {"summary": "ok", "score": 42}
    assert (result.prompt_tokens, result.completion_tokens) == (321, 12)
    assert result.model == "fake-model"
    assert result.messages == MESSAGES
    assert result.prompt_version == "t1"
    assert result.latency_ms >= 0


def test_it_asks_for_the_schema_through_response_format_and_sends_the_key(fake_llm):
    chat()

    sent = fake_llm.chat_requests[0]
    assert sent["model"] == "fake-model"
    assert sent["messages"] == MESSAGES
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert fake_llm.headers[0]["Authorization"] == "Bearer test-inference-key"


def test_it_accepts_a_base_url_ending_in_v1(fake_llm, settings):
    settings.INFERENCE_URL = fake_llm.url + "/v1/"

    assert chat().data == {"summary": "x", "score": 0}


def test_it_retries_once_with_the_validation_error_after_invalid_json(fake_llm, recorded):
    fake_llm.reply_text("Sure! Here is the summary: {summary: ok")
    fake_llm.reply_json({"summary": "fixed", "score": 7})

    result = chat()

    assert result.data == {"summary": "fixed", "score": 7}
    assert result.attempts == 2
    second = fake_llm.chat_requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "Sure! Here is the summary: {summary: ok"}
    assert "not valid JSON" in second[-1]["content"]
    assert [r.status for r in recorded] == ["invalid", "ok"]
    assert result.call_ids == [1, 2]


def test_it_retries_when_the_json_does_not_match_the_schema(fake_llm):
    fake_llm.reply_json({"summary": "ok", "score": 250, "extra": 1})
    fake_llm.reply_json({"summary": "ok", "score": 100})

    assert chat().data["score"] == 100
    correction = fake_llm.chat_requests[1]["messages"][-1]["content"]
    assert "$.score: must be <= 100" in correction
    assert "unexpected property 'extra'" in correction


def test_it_raises_a_validation_error_keeping_the_raw_reply_after_two_bad_replies(fake_llm, recorded):
    fake_llm.reply_text("nope")
    fake_llm.reply_text("still nope")

    with pytest.raises(LLMValidationError) as caught:
        chat()

    assert caught.value.raw == "still nope"
    assert caught.value.transient is False
    # The job's last error says what was wrong and where the raw reply is.
    assert "not valid JSON" in caught.value.user_message
    assert "raw reply is kept with the recorded model calls" in caught.value.user_message
    assert caught.value.call_ids == [1, 2]
    assert [r.response_text for r in recorded] == ["nope", "still nope"]
    assert len(fake_llm.chat_requests) == 2


def test_it_retries_server_errors_and_busy_answers_with_backoff_then_succeeds(fake_llm, recorded):
    fake_llm.reply_error(503, "loading model")
    fake_llm.reply_error(429, "too many requests")
    fake_llm.reply_json({"summary": "late", "score": 1})

    assert chat().data["summary"] == "late"
    assert [r.status for r in recorded] == ["error", "error", "ok"]
    assert [r.attempt for r in recorded] == [1, 2, 3]


def test_it_gives_up_on_server_errors_after_max_retries_with_a_transient_error(fake_llm, settings):
    settings.LLM_MAX_RETRIES = 1
    for _ in range(3):
        fake_llm.reply_error(500)

    with pytest.raises(LLMTransportError) as caught:
        chat()

    assert caught.value.transient is True
    assert "HTTP 500" in caught.value.user_message
    assert len(fake_llm.chat_requests) == 2


def test_a_slow_server_times_out_as_a_transient_error(fake_llm, settings, recorded):
    settings.LLM_TIMEOUT_SECONDS = 0.3
    settings.LLM_MAX_RETRIES = 0
    fake_llm.reply_slow(3, {"summary": "too late", "score": 1})

    with pytest.raises(LLMTransportError) as caught:
        chat()

    assert "did not answer within 0.3 s" in caught.value.user_message
    assert recorded[0].status == "error"


def test_an_unreachable_server_is_a_transient_error(settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = InferenceClient(f"http://127.0.0.1:{port}", "m", timeout=1, max_retries=0)

    with pytest.raises(LLMTransportError) as caught:
        client.chat_json(MESSAGES, schema=SCHEMA, operation="op", prompt_version="t1")

    assert "could not be reached" in caught.value.user_message


def test_a_refused_request_is_not_retried_and_says_why(fake_llm):
    fake_llm.reply_error(400, "the request exceeds the available context size")

    with pytest.raises(LLMError) as caught:
        chat()

    assert caught.value.transient is False
    assert "exceeds the available context size" in caught.value.user_message
    assert "LLM_CONTEXT_TOKENS" in caught.value.user_message  # what to change
    assert len(fake_llm.chat_requests) == 1


def test_a_refused_request_about_something_else_gets_no_context_hint(fake_llm):
    fake_llm.reply_error(404, "model not found")

    with pytest.raises(LLMError) as caught:
        chat()

    assert "model not found" in caught.value.user_message and "LLM_CONTEXT_TOKENS" not in caught.value.user_message


def test_errors_and_records_never_contain_the_api_key(fake_llm, settings, recorded):
    settings.LLM_MAX_RETRIES = 0
    fake_llm.reply_error(500)

    with pytest.raises(LLMError) as caught:
        chat()

    assert "test-inference-key" not in str(caught.value)
    assert "test-inference-key" not in repr(inference_client())
    assert "test-inference-key" not in json.dumps(recorded[0].request)


def test_every_call_is_recorded_with_operation_model_prompt_tokens_and_job(fake_llm, recorded):
    fake_llm.reply_json({"summary": "ok", "score": 3}, prompt_tokens=50, completion_tokens=5)

    chat(job_id=99)

    (record,) = recorded
    assert record.operation == "test_op"
    assert record.model == "fake-model"
    assert record.prompt_version == "t1"
    assert record.request["messages"] == MESSAGES
    assert json.loads(record.response_text) == {"summary": "ok", "score": 3}
    assert (record.prompt_tokens, record.completion_tokens) == (50, 5)
    assert record.status == "ok"
    assert record.job_id == 99
    assert record.latency_ms >= 0


def test_a_failing_listener_does_not_fail_the_call(fake_llm, recorded):
    def broken(record):
        raise RuntimeError("disk full")

    add_call_listener(broken)
    try:
        assert chat().data == {"summary": "x", "score": 0}
    finally:
        remove_call_listener(broken)
    assert len(recorded) == 1


def test_inference_client_refuses_when_no_url_is_configured(settings):
    settings.INFERENCE_URL = ""

    with pytest.raises(LLMNotConfigured) as caught:
        inference_client()

    assert "INFERENCE_URL" in caught.value.user_message
    assert llm.inference_configured() is False


def test_embed_batches_texts_and_keeps_their_order(fake_llm, recorded):
    client = embeddings_client()
    client.batch_size = 2
    texts = ["one", "two", "three", "four", "five"]

    vectors = client.embed(texts, job_id=5)

    assert len(vectors) == 5
    assert all(len(v) == fake_llm.dims for v in vectors)
    assert vectors[2] == fake_llm._vector("three")
    assert [r["input"] for r in fake_llm.requests] == [["one", "two"], ["three", "four"], ["five"]]
    assert [r.endpoint for r in recorded] == ["embeddings"] * 3
    assert recorded[0].job_id == 5
    assert client.model == "fake-embed" and client.dims == fake_llm.dims
    assert client.last_call_ids == [1, 2, 3]


def test_embed_puts_vectors_back_in_input_order_by_their_index(fake_llm):
    one, two = [1.0] * fake_llm.dims, [2.0] * fake_llm.dims
    fake_llm.reply_embeddings([one, two], reversed_order=True)

    assert embeddings_client().embed(["a", "b"]) == [one, two]


def test_embed_refuses_vectors_of_the_wrong_dimension(fake_llm, settings):
    settings.EMBEDDINGS_DIMS = 1024

    with pytest.raises(LLMError) as caught:
        embeddings_client().embed(["hello"])

    assert caught.value.user_message == (
        f"The embeddings model returns {fake_llm.dims} dimensions but EMBEDDINGS_DIMS is 1024."
    )
    assert caught.value.transient is False


def test_embeddings_client_refuses_when_no_url_is_configured(settings):
    settings.EMBEDDINGS_URL = ""

    with pytest.raises(LLMNotConfigured) as caught:
        embeddings_client()

    assert "EMBEDDINGS_URL" in caught.value.user_message


@pytest.mark.parametrize(
    "value,error",
    [
        ({"summary": "a", "score": 1}, None),
        ({"summary": "a"}, "missing required property 'score'"),
        ({"summary": 3, "score": 1}, "$.summary: expected string"),
        ({"summary": "a", "score": True}, "$.score: expected integer"),
        ({"summary": "a", "score": -1}, "must be >= 0"),
        ({"summary": "a" * 201, "score": 1}, "at most 200 characters"),
        ({"summary": "a", "score": 1, "tags": ["a", 2]}, "$.tags[1]: expected string"),
        ({"summary": "a", "score": 1, "tags": ["a"] * 4}, "at most 3 items"),
        (["not", "an", "object"], "expected object"),
    ],
)
def test_validate_schema_reports_what_is_wrong(value, error):
    errors = validate_schema(value, SCHEMA)
    if error is None:
        assert errors == []
    else:
        assert any(error in e for e in errors), errors


def test_validate_schema_checks_enums():
    assert validate_schema("high", {"type": "string", "enum": ["low", "high"]}) == []
    assert validate_schema("odd", {"type": "string", "enum": ["low", "high"]}) == ["$: must be one of ['low', 'high']"]


def test_token_estimate_is_pessimistic_for_non_latin_text():
    assert estimate_tokens("") == 0
    assert estimate_tokens("hello world, this is text") >= 6
    assert estimate_tokens("你好世界" * 10) >= 40


# --- the fake server's embeddings: "search by meaning" must work in tests ---
def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_texts_sharing_words_or_synonyms_land_closer_than_unrelated_ones(fake_llm):
    query, related, synonym, unrelated = embeddings_client().embed([
        "looking for a hiking buddy",
        "hiking buddy wanted this weekend",
        "anyone up for a trek with a partner",
        "selling my old laptop charger",
    ])

    assert cosine(query, related) > cosine(query, unrelated) + 0.2
    assert cosine(query, synonym) > cosine(query, unrelated) + 0.2


def test_the_same_text_always_gets_the_same_unit_vector(fake_llm):
    first, second = embeddings_client().embed(["Hello world", "hello, WORLD!"])

    assert first == second
    assert math.isclose(sum(x * x for x in first), 1.0, rel_tol=1e-6)


def test_changing_the_fake_dimension_follows_into_settings(fake_llm, settings):
    fake_llm.dims = 32

    (vector,) = embeddings_client().embed(["x"])

    assert len(vector) == 32 == settings.EMBEDDINGS_DIMS


# --- issue 14: exact token counts, replies cut at the limit ---


def test_token_counts_come_from_the_servers_tokenize_when_it_has_one(fake_llm):
    from rediska.llm import count_tokens

    fake_llm.tokenize = True
    assert count_tokens("one two three " * 20) == 60  # the fake counts a token a word


def test_token_counts_fall_back_to_the_estimate_without_tokenize(fake_llm):
    from rediska.llm import count_tokens

    text = "one two three " * 20
    assert count_tokens(text) == estimate_tokens(text)
    assert count_tokens(text) == estimate_tokens(text)  # asked once: the 404 is remembered
    assert len(fake_llm.tokenize_requests) == 1


def test_token_counts_fall_back_to_the_estimate_when_no_model_is_configured(settings):
    from rediska.llm import count_tokens

    settings.INFERENCE_URL = ""
    assert count_tokens("hello world") == estimate_tokens("hello world")


def test_a_reply_cut_at_the_token_limit_is_reported_with_the_setting_to_raise(fake_llm, recorded):
    from rediska.llm import LLMTruncated

    fake_llm.finish_reason = "length"
    fake_llm.reply_text('{"summary": "it was a long')

    with pytest.raises(LLMTruncated) as caught:
        chat()

    assert "LLM_MAX_REPLY_TOKENS" in caught.value.user_message and "cut off" in caught.value.user_message
    assert len(fake_llm.chat_requests) == 1  # not asked again: it would be cut at the same place
    assert [r.status for r in recorded] == ["invalid"] and "token limit" in recorded[0].error


def test_llm_max_reply_tokens_raises_the_operations_limit(fake_llm, settings):
    settings.LLM_MAX_REPLY_TOKENS = 4096
    fake_llm.reply_json({"summary": "ok", "score": 1})

    chat()

    assert fake_llm.chat_requests[0]["max_tokens"] == 4096
