from django.core.management.base import BaseCommand, CommandError

from rediska.backups.errors import BackupError
from rediska.tasks import attachments_snapshot_local, mysql_dump_local


class Command(BaseCommand):
    help = "Back up the database and attachments into BACKUPS_PATH/<timestamp>/ and prune old backups."

    def add_arguments(self, parser):
        parser.add_argument("--attachments-only", action="store_true",
                            help="Only snapshot ATTACHMENTS_PATH (no database dump).")

    def handle(self, *args, attachments_only=False, **options):
        task = attachments_snapshot_local if attachments_only else mysql_dump_local
        try:
            # Through the job ledger, so a failed cron run shows in the app like a scheduled one.
            result = task()
        except BackupError as exc:
            raise CommandError(exc.user_message) from None
        self.stdout.write(
            f"Backup {result['backup']} written: {result['tables']} tables, {result['rows']} rows "
            f"({result['dump_bytes']} bytes compressed), {result['files']} files ({result['file_bytes']} bytes; "
            f"{result['files_copied']} copied, {result['files_linked']} unchanged and hard-linked)."
        )
        pruned = result["pruned"] + result["stale_partials_removed"]
        self.stdout.write(f"Pruned: {', '.join(pruned)}." if pruned else "Pruned: nothing.")
