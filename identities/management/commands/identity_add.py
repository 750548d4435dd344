"""Headless set-up: create an identity from a refresh token read on stdin."""

import sys

from django.core.management.base import BaseCommand, CommandError

from identities import services
from identities.models import Identity
from rediska.providers import get_provider, provider_ids
from rediska.providers.errors import AuthError, ProviderError
from rediska.providers.registry import UnknownProvider


class Command(BaseCommand):
    help = ("Create an identity from a refresh token given on stdin (never as an argument, so it stays out of "
            "the shell history). The token is verified with the provider first.")
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("--provider", required=True, help="provider id, e.g. one of: " + ", ".join(provider_ids()))
        parser.add_argument("--username", required=True, help="the account the token belongs to")
        parser.add_argument("--display-name", default="", help="name shown in Rediska (default: the username)")

    def handle(self, *args, provider, username, display_name, **options):
        try:
            backend = get_provider(provider)
        except UnknownProvider:
            raise CommandError(f"Unknown provider '{provider}' (known: {', '.join(provider_ids())}).") from None
        try:
            username = services.clean_username(username)
        except services.IdentityError as exc:
            raise CommandError(exc.user_message) from None
        token = (options.get("stdin") or sys.stdin).readline().strip()
        if not token:
            raise CommandError("Give the refresh token on stdin: no refresh token was read.")
        try:
            account = backend.session(token).whoami()
        except AuthError as exc:
            raise CommandError(f"The refresh token was refused: {exc.user_message}") from None
        except ProviderError as exc:
            raise CommandError(exc.user_message) from None
        if account.username.lower() != username.lower():
            raise CommandError(f"This refresh token belongs to {account.username}, not {username}.")
        existed = Identity.objects.filter(provider_id=provider, external_username__iexact=username).exists()
        try:
            identity = services.connect_identity(provider_id=provider, refresh_token=token, account=account,
                                                 display_name=display_name)
        except services.IdentityError as exc:
            raise CommandError(exc.user_message) from None
        self.stdout.write(f"Identity {identity.pk} “{identity.display_name}” {'reconnected' if existed else 'created'} "
                          f"for {identity.external_username}" + (" (the default)." if identity.is_default else "."))
