from django.contrib import admin

from .models import Conversation, ExternalAccount, Message, SendAttempt, SyncCursor


@admin.register(ExternalAccount)
class ExternalAccountAdmin(admin.ModelAdmin):
    list_display = ("external_username", "provider", "remote_status", "contact_state", "engagement_state",
                    "analysis_state")
    list_filter = ("provider", "remote_status", "contact_state", "engagement_state", "analysis_state")
    search_fields = ("external_username",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "counterpart_account", "identity", "subject", "last_activity_at", "deleted_at")
    list_filter = ("identity",)
    list_select_related = ("counterpart_account", "identity")
    search_fields = ("counterpart_account__external_username", "subject", "external_conversation_id")
    raw_id_fields = ("counterpart_account", "identity", "last_message")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "direction", "sent_at", "remote_visibility", "deleted_at")
    list_filter = ("direction", "remote_visibility")
    search_fields = ("external_message_id",)
    raw_id_fields = ("conversation", "identity")


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    list_display = ("identity", "folder", "synced_until", "last_synced_at", "backfilled_at", "walk_started_at",
                    "walk_pages", "lease_owner", "lease_until")


@admin.register(SendAttempt)
class SendAttemptAdmin(admin.ModelAdmin):
    list_display = ("idempotency_key", "identity", "to_username", "status", "error_code", "created_at")
    list_filter = ("status", "error_code")
    raw_id_fields = ("identity", "conversation", "message")
    readonly_fields = ("idempotency_key", "status", "message", "error_code", "error_message")
