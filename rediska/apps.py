from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "rediska"
    label = "rediska"
    verbose_name = "Rediska core"

    def ready(self):
        from . import checks  # noqa: F401  (registers system checks)
