"""Search tasks (spec §7 names); thin wrappers over `search.services`.

Backend or embeddings-server outages raise errors with `transient = True`, so the
job ledger retries them later with backoff.
"""

from __future__ import annotations

from rediska.jobs import ledger_task

from . import services


@ledger_task("index.upsert_content", queue="index")
def upsert_content(job, kind: str, pks: list[int]) -> dict:
    return services.upsert_content(kind, pks)


@ledger_task("embed.generate", queue="embed")
def generate(job, doc_ids: list[str] | None = None) -> dict:
    """Embed these documents; without ids, sweep up to 500 documents still lacking a vector."""
    return services.generate_embeddings(doc_ids, job_id=job.pk)


@ledger_task("search.ask_archive", queue="agent", max_attempts=3)
def ask_archive(job, question_id: int) -> dict:
    """Answer a question asked on the search page ("Ask your archive")."""
    from .answers import answer_question
    from .models import ArchiveQuestion

    asked = answer_question(ArchiveQuestion.objects.get(pk=question_id), job=job)
    return {"question_id": asked.pk, "status": asked.status, "citations": len(asked.citations_json)}
