"""Re-encrypt every stored credential under a new credentials key, all or nothing."""

import os
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from identities.models import ProviderCredential
from rediska import audit, crypto
from rediska.progress import progress_bar


class Command(BaseCommand):
    help = ("Re-encrypt all provider credentials under a new key, read from stdin (44 characters, "
            "urlsafe-base64) or made with --generate. Prints the new key once.")
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true", help="generate the new key instead of reading it")

    def handle(self, *args, generate=False, **options):
        old_key = settings.CREDENTIALS_KEY
        if generate:
            new_key = crypto.generate_key()
        else:
            try:
                new_key = crypto.parse_key((options.get("stdin") or sys.stdin).readline())
            except crypto.CredentialsKeyError as exc:
                raise CommandError(f"{exc} Give it on stdin or use --generate.") from None
        if new_key == old_key:
            raise CommandError("This key is already the credentials key: nothing to do.")
        key_file = None if os.environ.get("ENCRYPTION_KEY") else Path(settings.DATA_DIR) / "credentials.key"
        staged = self._stage_key_file(key_file, new_key) if key_file else None
        try:
            count = self._reencrypt(old_key, new_key)
        except BaseException:
            if staged:
                staged.unlink(missing_ok=True)
            raise
        self.stdout.write(f"Re-encrypted {count} credential{'s' if count != 1 else ''}. New credentials key "
                          f"(shown once, keep it safe):\n{crypto.format_key(new_key)}")
        if staged:
            os.replace(staged, key_file)
            self.stdout.write(f"Written to {key_file}; restart the web and worker processes.")
        else:
            self.stdout.write("Set ENCRYPTION_KEY to the new key and restart the web and worker processes.")

    def _reencrypt(self, old_key: bytes, new_key: bytes) -> int:
        with transaction.atomic():
            rows = list(ProviderCredential.objects.select_for_update().order_by("pk"))
            plain, unreadable = {}, []
            for row in progress_bar(self.stdout, rows, desc="decrypt", disable=len(rows) < 50):
                try:
                    plain[row.pk] = crypto.decrypt(row.secret_encrypted, key=old_key, context=row.context)
                except crypto.CredentialsKeyError:
                    unreadable.append(row.pk)
            if unreadable:
                raise CommandError(f"{len(unreadable)} credential{'s' if len(unreadable) != 1 else ''} "
                                   f"(ids {', '.join(map(str, unreadable[:10]))}) cannot be decrypted with the "
                                   "current key: nothing was changed. Restore the key they were encrypted with.")
            now = timezone.now()
            for row in rows:
                row.secret_encrypted = crypto.encrypt(plain[row.pk], key=new_key, context=row.context)
                row.rotated_at = now
            ProviderCredential.objects.bulk_update(rows, ["secret_encrypted", "rotated_at"], batch_size=500)
            audit.record("credentials.rotate_key", actor="user",
                         response={"rows_reencrypted": len(rows), "old_key_fingerprint": crypto.key_fingerprint(old_key),
                                   "new_key_fingerprint": crypto.key_fingerprint(new_key)})
        return len(rows)

    @staticmethod
    def _stage_key_file(key_file: Path, new_key: bytes) -> Path:
        """The new key beside the old file, moved into place only after the database commits."""
        fd, name = tempfile.mkstemp(prefix=".credentials.key.", dir=key_file.parent)
        with os.fdopen(fd, "w") as fh:  # mkstemp creates it 0600
            fh.write(crypto.format_key(new_key) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return Path(name)
