from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads"

    def ready(self):
        # Saved replies' {post_title}: the inbox asks us, it cannot import the leads app.
        from inbox.services.replies import register_post_title_source

        from .services import post_title_for

        register_post_title_source(post_title_for)
