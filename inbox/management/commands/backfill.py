"""`manage.py backfill --identity NAME`: archive every message of an identity now."""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError

from identities.commands import find_identity
from identities.services import session_for
from inbox.services.ingest import walk_folder
from identities.services import capabilities_for
from inbox.services.syncing import folders_for
from rediska.providers.errors import ListingUnavailableError, ProviderError

from ._common import page_counter, progress_bar


class Command(BaseCommand):
    help = "Walk every message folder of an identity to its end (what the Backfill button does), with progress."

    def add_arguments(self, parser):
        parser.add_argument("--identity", required=True, help="Username or display name of the identity.")

    def handle(self, *args, identity, **options):
        chosen = find_identity(identity)
        started = time.monotonic()
        results, refused = [], []
        folders = folders_for(chosen)
        if not folders:
            raise CommandError(capabilities_for(chosen).why_not("sync_received"))
        try:
            session = session_for(chosen)
            with progress_bar(self.stdout, chosen.external_username) as bar:
                on_page = page_counter(bar)
                for folder in folders:
                    try:
                        result = walk_folder(chosen, session, folder, full=True, owner=f"command:{os.getpid()}",
                                             on_page=on_page)
                    except ListingUnavailableError as exc:  # the other folders still count
                        refused.append(f"{folder}: {exc.user_message}")
                        continue
                    if result.busy:
                        raise CommandError(f"A sync of {chosen.external_username}'s {folder} folder is under way: "
                                           "try again when it ends.")
                    results.append(result)
        except ProviderError as exc:
            raise CommandError(exc.user_message) from None
        for line in refused:
            self.stderr.write(f"Not archived: {line}")
        if not results:
            raise CommandError(refused[0] if refused else "Nothing was archived.")
        elapsed = time.monotonic() - started
        messages = sum(r.messages for r in results)
        self.stdout.write(
            f"{chosen.external_username}: {messages} messages in {sum(r.pages for r in results)} pages, "
            f"{sum(r.new for r in results)} new, {sum(r.changed for r in results)} changed, "
            f"{sum(r.skipped for r in results)} skipped, {elapsed:.1f} s ({messages / max(elapsed, 1e-6):.0f}/s)."
        )
