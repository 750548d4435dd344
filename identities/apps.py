from django.apps import AppConfig


class IdentitiesConfig(AppConfig):
    name = "identities"
    verbose_name = "Identities"

    def ready(self):
        from django.db.models.signals import post_migrate

        from .services import sync_providers

        # Provider rows mirror the provider registry (code), so they are seeded
        # after every migrate rather than named in a data migration.
        post_migrate.connect(lambda **kw: sync_providers(), sender=self, weak=False)
