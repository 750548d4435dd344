"""`manage.py sync --identity NAME | --all`: fetch what is new now."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from identities.commands import find_identity
from identities.models import Identity
from identities.services import capabilities_for, session_for
from inbox.services.syncing import sync_identity
from rediska.providers.errors import ProviderError

from ._common import page_counter, progress_bar


class Command(BaseCommand):
    help = "Fetch what is new for one identity or every active one (what the beat does every few minutes)."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--identity", help="Username or display name of the identity.")
        which.add_argument("--all", action="store_true", help="Every active identity.")

    def handle(self, *args, identity, all, **options):
        identities = (
            list(Identity.objects.filter(is_active=True).order_by("pk")) if all else [find_identity(identity)]
        )
        failures = [f"{i.external_username}: must be reconnected first" for i in identities if i.needs_reconnect]
        identities = [i for i in identities if not i.needs_reconnect]
        for chosen in [i for i in identities if not capabilities_for(i).can_sync]:
            reason = f"{chosen.external_username}: not synced: {capabilities_for(chosen).why_not('sync_received')}"
            if all:
                self.stdout.write(reason)  # an archive-only identity is not a failure of --all
            else:
                failures.append(reason)
        identities = [i for i in identities if capabilities_for(i).can_sync]
        for chosen in identities:
            try:
                with progress_bar(self.stdout, chosen.external_username) as bar:
                    summary = sync_identity(chosen, session_for(chosen), owner=f"command:{os.getpid()}",
                                            on_page=page_counter(bar))
            except ProviderError as exc:
                failures.append(f"{chosen.external_username}: {exc.user_message}")
                continue
            busy = [f.folder for f in summary.folders if f.busy]
            self.stdout.write(
                f"{chosen.external_username}: {summary.new} new of "
                f"{sum(f.messages for f in summary.folders)} messages read, "
                f"{summary.accounts_checked} accounts checked"
                + (f"; skipped {', '.join(busy)} (a sync is under way)" if busy else "") + "."
            )
            for folder, reason in summary.unavailable.items():
                self.stderr.write(f"{chosen.external_username}: {folder} not synced: {reason}")
        if failures:
            raise CommandError("; ".join(failures))
