"""`manage.py import_export --identity NAME PATH`: import a data export (its ZIP or unpacked folder)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from identities.commands import find_identity
from inbox.errors import InboxError
from inbox.services.export_import import local_import, run_import
from rediska.progress import progress_bar


class Command(BaseCommand):
    help = "Import the data export of an identity (ZIP or folder) into its archive, with progress; safe to re-run."

    def add_arguments(self, parser):
        parser.add_argument("--identity", required=True, help="Username or display name of the identity.")
        parser.add_argument("path", help="The export's ZIP file, or the folder it was unpacked into.")

    def handle(self, *args, identity, path, **options):
        chosen = find_identity(identity)
        source = Path(path).expanduser().resolve()
        if not source.exists():
            raise CommandError(f"{path} does not exist.")
        try:
            record = local_import(chosen, source)
        except InboxError as exc:
            raise CommandError(exc.user_message) from None
        started = time.monotonic()
        with progress_bar(self.stdout, unit="row", desc=chosen.external_username) as bar:
            def on_progress(fields: dict) -> None:
                if "total" in fields:
                    bar.total = fields["total"]
                    bar.update(fields["done"] - bar.n)
                    bar.set_postfix(file=fields["file"], new=fields["new"], refresh=False)
                else:
                    bar.set_description(f"{chosen.external_username}: checking files", refresh=False)
                    bar.update(fields["rows_checked"] - bar.n)

            summary = run_import(record, on_progress=on_progress)
        if "refused" in summary:
            raise CommandError(summary["refused"])
        elapsed = time.monotonic() - started
        for entry in summary["files"]:
            line = f"  {entry['name']}: {entry['rows']} rows, {entry['new']} new, {entry['known']} already known"
            if entry.get("error"):
                line = f"  {entry['name']}: not read: {entry['error']}"
            skipped = ", ".join(f"{count} {reason}" for reason, count in entry["skipped"].items())
            self.stdout.write(line + (f", skipped: {skipped}" if skipped else ""))
        if summary.get("chats_not_imported"):
            groups = summary["chats_not_imported"]
            self.stdout.write(f"  {groups['chats']} chats ({groups['lines']} lines) not imported: {groups['reason']}.")
        self.stdout.write(f"{chosen.external_username}: {summary['new']} new, {summary['known']} already known, "
                          f"{summary['skipped']} skipped in {elapsed:.1f} s.")
