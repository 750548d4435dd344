from django.core.management.base import BaseCommand, CommandError

from rediska.backups.errors import BackupError, RestoreTestFailed
from rediska.tasks import restore_test_local


class Command(BaseCommand):
    help = ("Restore a backup (the newest full one by default) into a scratch database, verify checksums, "
            "row counts and attachments; exit 0 only if everything matches.")

    def add_arguments(self, parser):
        parser.add_argument("backup", nargs="?", help="Backup name (a folder in BACKUPS_PATH).")

    def handle(self, *args, backup=None, **options):
        try:
            result = restore_test_local(backup=backup)
        except RestoreTestFailed as exc:
            self._report(exc.report.as_dict())
            raise CommandError(exc.user_message) from None
        except BackupError as exc:
            raise CommandError(exc.user_message) from None
        self._report(result)
        self.stdout.write(f"Restore test of {result['backup']} passed.")

    def _report(self, report: dict) -> None:
        for check in report["checks"]:
            self.stdout.write(f"  [{'ok' if check['ok'] else 'FAIL'}] {check['name']}: {check['detail']}")
