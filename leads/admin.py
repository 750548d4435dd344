from django.contrib import admin

from .models import AccountProfile, LeadPost, ProfileItem, Watch


@admin.register(LeadPost)
class LeadPostAdmin(admin.ModelAdmin):
    list_display = ("title", "source_location", "status", "remote_visibility", "score", "post_created_at")
    list_filter = ("status", "remote_visibility", "provider")
    search_fields = ("title", "external_post_id", "source_location")
    raw_id_fields = ("author_account",)
    list_select_related = ("author_account",)


@admin.register(ProfileItem)
class ProfileItemAdmin(admin.ModelAdmin):
    list_display = ("external_item_id", "item_type", "account", "location", "remote_visibility", "item_created_at")
    list_filter = ("item_type", "remote_visibility")
    raw_id_fields = ("account", "attachment")
    list_select_related = ("account",)


@admin.register(Watch)
class WatchAdmin(admin.ModelAdmin):
    list_display = ("location", "query", "sort", "identity", "enabled", "paused_reason", "next_run_at")
    list_filter = ("enabled", "sort")
    list_select_related = ("identity",)


@admin.register(AccountProfile)
class AccountProfileAdmin(admin.ModelAdmin):
    list_display = ("account", "fetched_at", "items_fetched_at", "fetch_error")
    raw_id_fields = ("account",)
