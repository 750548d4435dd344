from django.core.management.base import BaseCommand, CommandError

from rediska.backups import services
from rediska.backups.errors import BackupError


class Command(BaseCommand):
    help = ("Replace the database and attachments with a backup. Takes a safety backup first; "
            "refuses without --yes and while workers are busy.")

    def add_arguments(self, parser):
        parser.add_argument("backup", help="Backup name (a folder in BACKUPS_PATH).")
        parser.add_argument("--yes", action="store_true", help="Really replace the current data.")
        parser.add_argument("--force", action="store_true", help="Restore even while jobs are running.")

    def handle(self, *args, backup, yes=False, force=False, **options):
        try:
            result = services.restore_backup(backup, yes=yes, force=force)
        except BackupError as exc:
            raise CommandError(exc.user_message) from None
        self.stdout.write(f"Safety backup of the previous data: {result['safety_backup']}.")
        self.stdout.write(f"Restored {result['backup']}: {result['tables']} tables, {result['rows']} rows; "
                          f"attachments: {result['files_written']} written, {result['files_unchanged']} unchanged, "
                          f"{result['files_removed']} removed.")
        for warning in result["warnings"]:
            self.stdout.write(f"Warning: {warning}")
        if result["jobs_interrupted"]:
            self.stdout.write(f"{result['jobs_interrupted']} job(s) pending in the backup were marked failed.")
        if not result["credentials_key_matches"]:
            self.stdout.write("Warning: this backup was made with a different ENCRYPTION_KEY; "
                              "reconnect every identity (or restore the old key).")
        if pending := result["migrations_pending"]:
            self.stdout.write(f"This backup is from an older schema ({pending} migration{'s' if pending > 1 else ''} "
                              "not applied): run `manage.py migrate` now.")
