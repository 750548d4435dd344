"""Browse one location now: `manage.py browse hiking --query "buddy" --limit 500`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from identities.commands import find_identity
from identities.services import session_for
from leads import services
from leads.models import Watch
from rediska.progress import progress_bar
from rediska.providers.errors import ProviderError


class Command(BaseCommand):
    help = "Browse a location (new/hot/top or a keyword search) and store its posts as leads."

    def add_arguments(self, parser):
        parser.add_argument("location")
        parser.add_argument("--query", default="", help="Search words inside the location.")
        parser.add_argument("--sort", default="new", choices=Watch.Sort.values)
        parser.add_argument("--limit", type=int, default=services.PAGE_SIZE,
                            help=f"Posts to read (1-{services.MAX_BROWSE_LIMIT}).")
        parser.add_argument("--identity", help="Username or display name of the identity to browse as "
                                               "(default: the default identity).")

    def handle(self, *args, location, query, sort, limit, identity, **options):
        if not 1 <= limit <= services.MAX_BROWSE_LIMIT:
            raise CommandError(f"--limit must be between 1 and {services.MAX_BROWSE_LIMIT}.")
        try:
            location, query = services.clean_location(location), services.clean_query(query)
            chosen = find_identity(identity) if identity else services.browsing_identity()
            session = session_for(chosen)
            with progress_bar(self.stdout, total=limit, unit="post") as bar:
                def progress(**state):
                    bar.update(state["posts"] - bar.n)

                result = services.browse_location(session, provider_id=chosen.provider_id, location=location,
                                                  sort=sort, query=query or None, limit=limit, progress=progress)
        except (services.LeadsError, ProviderError) as exc:
            raise CommandError(exc.user_message) from None
        self.stdout.write(
            f"{location}: {result.seen} posts in {result.pages} pages, {result.created} new, "
            f"{result.updated} updated" + (f", {len(result.skipped)} skipped" if result.skipped else "") + "."
        )


