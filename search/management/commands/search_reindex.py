from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from rediska.llm import LLMError
from rediska.progress import progress_bar
from search import services
from search.backends import BACKENDS, get_backend
from search.backends.base import SearchError
from search.documents import KINDS


class Command(BaseCommand):
    help = "Rebuild the search index from the database (all kinds, or only some into the live index)."

    def add_arguments(self, parser):
        parser.add_argument("--backend", choices=BACKENDS, help="default: elastic when ELASTIC_URL is set, else embedded")
        parser.add_argument("--kind", action="append", choices=KINDS, dest="kinds",
                            help="only this kind (repeatable); the index is updated in place")
        parser.add_argument("--batch", type=int, default=1000)

    def handle(self, *args, backend=None, kinds=None, batch=1000, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        try:
            target = get_backend(backend)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        kinds = tuple(dict.fromkeys(kinds)) if kinds else KINDS
        total = services.count_reindex_work(kinds)
        model, _ = services.wanted_embeddings()
        with progress_bar(self.stdout, total=total * (2 if model else 1), unit="doc", desc="reindex",
                          mininterval=0.5) as bar:
            try:
                result = services.reindex(backend=target, kinds=kinds, batch=batch, progress=bar.update)
            except (SearchError, LLMError) as exc:
                raise CommandError(f"Search reindex failed: {exc.user_message}") from None
        written = sum(result["documents"].values())
        parts = ", ".join(f"{kind} {count}" for kind, count in result["documents"].items())
        self.stdout.write(
            self.style.SUCCESS(f"Indexed {written} documents ({parts}) in the {target.name} index; "
                               f"{result['embedded']} embedded.")
        )
