from django.urls import path

from . import views

app_name = "inbox"

urlpatterns = [
    path("", views.conversation_list, name="list"),
    path("c/<int:pk>/", views.conversation_detail, name="conversation"),
    path("c/<int:pk>/reply", views.reply, name="reply"),
    path("c/<int:pk>/hidden", views.conversation_hidden, name="conversation_hidden"),
    path("c/<int:pk>/messages/hidden", views.messages_hidden, name="messages_hidden"),
    path("identity/<int:identity_id>/sync/", views.identity_sync_panel, name="identity_sync_panel"),
    path("identity/<int:identity_id>/sync/now", views.identity_sync, name="identity_sync"),
    path("identity/<int:identity_id>/sync/backfill", views.identity_backfill, name="identity_backfill"),
    # Sending on the provider's own page ("Open on ... to send", then "I sent it")
    path("c/<int:pk>/compose", views.compose_on_site, name="compose_on_site"),
    path("c/<int:pk>/sent-by-hand", views.sent_by_hand, name="sent_by_hand"),
    path("identity/<int:identity_id>/export/", views.identity_export, name="identity_export"),
    # Conversation state (issue 15).
    path("c/<int:pk>/read", views.conversation_read, name="conversation_read"),
    path("c/<int:pk>/snooze", views.conversation_snooze, name="conversation_snooze"),
    path("c/<int:pk>/unsnooze", views.conversation_unsnooze, name="conversation_unsnooze"),
    path("c/<int:pk>/follow-up", views.conversation_follow_up, name="conversation_follow_up"),
    path("c/<int:pk>/follow-up/clear", views.conversation_follow_up_clear, name="conversation_follow_up_clear"),
]
