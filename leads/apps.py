from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads"

    def ready(self):
        # An export's own posts and comments are profile items (inbox imports them, leads keeps them).
        from inbox.services.export_import import register_item_store

        from .exports import store_own_items

        register_item_store(store_own_items)
        # Saved replies' {post_title}: the inbox asks us, it cannot import the leads app.
        from inbox.services.replies import register_post_title_source

        from .services import post_title_for

        register_post_title_source(post_title_for)
