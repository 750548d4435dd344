"""The real-model suite: behaviour on real local models (llama.cpp), not the tiny model's wisdom.

- Ranking over a labelled set (tests/quality/data/labelled_set.json): per ranking
  (keyword, vector, fused) the top-1 and top-5 hits on each query kind and the results
  of unrelated queries, printed; the fused ranking must be at least the better single
  one on each kind, and unrelated queries must show nothing with no setting given.
  The ranking shipped before issue 14 (plain RRF over every word, no floor) is printed too.
- Agents: valid structured replies or a clear failure; every call recorded in llm_calls.
- Ask your archive: a cited answer or a plain "nothing found", never an uncited guess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.models import LLMCall
from search import answers, services
from search.backends import get_backend
from search.backends.base import Filters
from search.fusion import reciprocal_rank_fusion
from search.models import ArchiveQuestion
from search.tasks import ask_archive
from search.text import embedding_input, keyword_terms, terms
from rediska.llm import embeddings_client

pytestmark = [pytest.mark.quality, pytest.mark.django_db]
DATA = json.loads((Path(__file__).parent / "data" / "labelled_set.json").read_text())
KINDS = ("paraphrase", "exact")


@pytest.fixture
def labelled_archive(real_models):
    from tests.factories import MessageFactory

    ids = {}
    for item in DATA["documents"]:
        ids[item["key"]] = MessageFactory(body_text=item["text"])
    services.reindex()  # the real path: documents, vectors from the real server, the floor
    return {key: f"message:{m.pk}" for key, m in ids.items()}


def _rankings(backend, query: str, floor: float) -> dict[str, list[str]]:
    query_terms = terms(query)
    (vector,) = embeddings_client().embed([embedding_input(query)], operation="search_query")
    keyword = backend.keyword(keyword_terms(query_terms), Filters(), services.FUSION_DEPTH)
    vector_hits = backend.vector(vector, Filters(), services.FUSION_DEPTH, floor)
    fused = services.fuse(keyword, vector_hits, query_terms, floor, 25)
    # What shipped before: every word to BM25, no floor, plain RRF.
    old_keyword = backend.keyword(query_terms, Filters(), services.FUSION_DEPTH)
    old_vector = backend.vector(vector, Filters(), services.FUSION_DEPTH, 0.0)
    old = reciprocal_rank_fusion([[h.document.doc_id for h in old_keyword], [h.document.doc_id for h in old_vector]],
                                 size=25)
    return {
        "keyword": [h.document.doc_id for h in keyword],
        "vector": [h.document.doc_id for h in vector_hits],
        "fused": [h.document.doc_id for h in fused],
        "shipped fused": [doc_id for doc_id, _ in old],
    }


def test_the_fused_ranking_is_at_least_its_best_part_and_unrelated_queries_show_nothing(labelled_archive, capsys):
    backend = get_backend()
    meta = backend.meta()
    floor = services.min_similarity(meta)
    names = ("keyword", "vector", "fused", "shipped fused")
    hits = {(name, kind, k): 0 for name in names for kind in KINDS for k in (1, 5)}
    totals = {kind: 0 for kind in KINDS}
    unrelated = {name: 0 for name in names}
    unrelated_queries = 0
    misses = []
    for query in DATA["queries"]:
        ranked = _rankings(backend, query["query"], floor)
        if query["kind"] == "unrelated":
            unrelated_queries += 1
            for name in names:
                unrelated[name] += len(ranked[name])
            continue
        want = labelled_archive[query["expect"]]
        totals[query["kind"]] += 1
        for name in names:
            for k in (1, 5):
                hits[(name, query["kind"], k)] += want in ranked[name][:k]
        if want not in ranked["fused"][:1]:
            misses.append(f"{query['kind']}: {query['query']!r} -> fused top-1 was {ranked['fused'][:1]}")

    with capsys.disabled():
        print(f"\n== Ranking on the labelled set: {len(DATA['documents'])} messages, all-MiniLM-L6-v2 via llama-server; "
              f"similarity floor derived from the index: {floor:.3f}")
        header = "ranking".ljust(14) + "".join(f"{kind} top-1  {kind} top-5  ".rjust(1) for kind in KINDS)
        print(header + f"unrelated: results ({unrelated_queries} queries)")
        for name in names:
            row = name.ljust(14)
            for kind in KINDS:
                row += f"{hits[(name, kind, 1)]:>3}/{totals[kind]:<3}".ljust(len(kind) + 7)
                row += f"{hits[(name, kind, 5)]:>3}/{totals[kind]:<3}".ljust(len(kind) + 8)
            print(row + str(unrelated[name]))
        for miss in misses:
            print("  fused miss:", miss)

    for kind in KINDS:
        for k in (1, 5):
            best = max(hits[("keyword", kind, k)], hits[("vector", kind, k)])
            assert hits[("fused", kind, k)] >= best, f"fused top-{k} on {kind} queries is below its best part"
    assert unrelated["fused"] == 0 and unrelated["vector"] == 0 and unrelated["keyword"] == 0


def test_unrelated_queries_show_no_results_on_the_search_page_path(labelled_archive):
    for query in (q["query"] for q in DATA["queries"] if q["kind"] == "unrelated"):
        results = services.search_content(query, Filters())
        assert results.error is None and results.total == 0, (query, results.notices)


# --- agents on the real chat model ------------------------------------------------------------


def _outcome(fn, *args, **kwargs):
    """'ok' or the plain-words failure: a clear message either way."""
    from agents.services import AgentError
    from rediska.llm import LLMError

    try:
        return "ok", fn(*args, **kwargs)
    except (AgentError, LLMError) as exc:
        assert exc.user_message and "Traceback" not in exc.user_message
        return exc.user_message, None


def test_agents_give_valid_structured_replies_or_a_clear_failure_and_every_call_is_recorded(real_models, capsys):
    from agents import schemas, services as agents
    from rediska.llm import validate_schema
    from tests.factories import IdentityFactory, LeadPostFactory, ProfileItemFactory

    lead = LeadPostFactory(title="Looking for a hiking partner in the Alps this August",
                           body_text="I'm 30, fairly fit, planning 5 days between huts near Chamonix. Anyone keen?")
    for text in ("Just did the Tour du Mont Blanc, amazing huts", "Anyone know good boots for wide feet?"):
        ProfileItemFactory(account=lead.author_account, text_content=text)
    identity = IdentityFactory(voice_config_json={"system_prompt": "A friendly hiker from Lyon.", "tone": "warm"})

    summary_state, snapshot = _outcome(agents.summarize_profile, lead.author_account)
    score_state, scored = _outcome(agents.score_lead, lead)
    draft_state, draft = _outcome(agents.draft_intro, lead, identity)

    if snapshot is not None:
        data = {"summary": snapshot.summary_text, "signals": snapshot.signals_json, "risk_flags": snapshot.risk_flags_json}
        assert validate_schema(data, schemas.PROFILE_SUMMARY) == []
    if scored is not None:
        assert 0 <= scored.score <= 100
    if draft is not None:
        assert draft.body_text.strip()
    calls = list(LLMCall.objects.filter(endpoint="chat").order_by("pk"))
    assert {c.operation for c in calls} >= {"profile_summary", "lead_scoring"}
    assert all(c.status in ("ok", "invalid", "error") and c.latency_ms > 0 for c in calls)
    with capsys.disabled():
        print(f"\n== Agents on SmolLM2-135M-Instruct: summary {summary_state}; score {score_state}"
              f"{f' ({scored.score})' if scored else ''}; draft {draft_state}; {len(calls)} chat calls recorded "
              f"({', '.join(f'{c.operation}:{c.status}' for c in calls)})")


# --- Ask your archive on the real chat model ------------------------------------------------------


def test_ask_your_archive_answers_with_citations_or_says_nothing_was_found(labelled_archive, capsys):
    from rediska.models import Job

    asked = answers.request_answer("Who offered to lend me a tent for the festival?", Filters())
    Job.objects.filter(pk=asked.job_id).update(max_attempts=1)  # a slow model must end as a clear failure here
    ask_archive(asked.pk, job_id=asked.job_id)
    asked.refresh_from_db()

    assert asked.status in (ArchiveQuestion.Status.ANSWERED, ArchiveQuestion.Status.NOTHING_FOUND,
                            ArchiveQuestion.Status.FAILED)
    calls = LLMCall.objects.filter(operation="ask_archive")
    assert calls.exists() and all(c.job_id == asked.job_id for c in calls)
    if asked.status == ArchiveQuestion.Status.ANSWERED:
        assert asked.citations_json and asked.answer_text
        assert {c["doc_id"] for c in asked.citations_json} <= set(labelled_archive.values())
    else:
        assert asked.answer_text in (None, answers.MODEL_DECLINED) and asked.citations_json == []
    if asked.status == ArchiveQuestion.Status.FAILED:
        assert asked.error

    nothing = answers.request_answer("What did the quantum chromodynamics lattice simulations show?", Filters())
    ask_archive(nothing.pk, job_id=nothing.job_id)
    nothing.refresh_from_db()
    assert nothing.status == ArchiveQuestion.Status.NOTHING_FOUND
    assert not LLMCall.objects.filter(operation="ask_archive", job_id=nothing.job_id).exists()  # the model never guessed
    with capsys.disabled():
        cited = [labelled_key(labelled_archive, c["doc_id"]) for c in asked.citations_json]
        print(f"\n== Ask your archive: {asked.status}: {asked.answer_text or asked.error!r} cited {cited}; "
              f"unrelated question: {nothing.status}, no model call")


def labelled_key(archive: dict, doc_id: str) -> str:
    return next((key for key, value in archive.items() if value == doc_id), doc_id)
