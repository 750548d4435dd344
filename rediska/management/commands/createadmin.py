"""Create the one admin user, non-interactively.

    manage.py createadmin --username admin < password.txt
    REDISKA_ADMIN_PASSWORD=... manage.py createadmin --username admin
    manage.py createadmin --if-missing --generate   # what `make run` does
"""

from __future__ import annotations

import os
import secrets
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from rediska import audit


class Command(BaseCommand):
    help = "Create the single admin user (password from stdin or REDISKA_ADMIN_PASSWORD)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--if-missing", action="store_true", help="Do nothing (exit 0) if an admin exists.")
        parser.add_argument("--generate", action="store_true", help="Generate a password and print it once.")

    def handle(self, *args, username, if_missing, generate, **options):
        User = get_user_model()
        existing = User.objects.filter(is_superuser=True).first()
        if existing:
            if if_missing:
                return
            raise CommandError(f"An admin already exists ({existing.username}); Rediska has exactly one user.")
        username = username.strip()
        if not username or len(username) > 150:
            raise CommandError("--username must be 1 to 150 characters.")
        if generate:
            password = secrets.token_urlsafe(15)
        else:
            password = os.environ.get("REDISKA_ADMIN_PASSWORD") or ("" if sys.stdin.isatty() else sys.stdin.readline())
            password = password.rstrip("\r\n")
            if not password:
                raise CommandError("No password given: pipe it on stdin or set REDISKA_ADMIN_PASSWORD.")
        user = User(username=username, is_staff=True, is_superuser=True)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("Password rejected: " + " ".join(exc.messages)) from None
        user.set_password(password)
        with transaction.atomic():
            user.save()
            audit.record("auth.create_admin", actor="system", entity=user, request={"username": username})
        self.stdout.write(self.style.SUCCESS(f"Admin user created: {username}"))
        if generate:
            self.stdout.write(f"  username: {username}\n  password: {password}\n  (shown once; change it in /admin/)")
