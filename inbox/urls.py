from django.urls import path

from . import views, workflow_views

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
    # workflow: labels, notes, saved replies, pacing, CSV export
    path("export.csv", workflow_views.conversations_export, name="export"),
    path("c/<int:pk>/labels", workflow_views.conversation_label_add, name="conversation_label_add"),
    path("c/<int:pk>/labels/<int:label_id>/remove", workflow_views.conversation_label_remove,
         name="conversation_label_remove"),
    path("people/<int:account_id>/", workflow_views.person_panel, name="person_panel"),
    path("people/<int:account_id>/labels", workflow_views.account_label_add, name="account_label_add"),
    path("people/<int:account_id>/labels/<int:label_id>/remove", workflow_views.account_label_remove,
         name="account_label_remove"),
    path("people/<int:account_id>/notes", workflow_views.note_add, name="note_add"),
    path("notes/<int:pk>/delete", workflow_views.note_delete, name="note_delete"),
    path("replies/", workflow_views.saved_replies, name="saved_replies"),
    path("replies/insert", workflow_views.saved_reply_picker, name="saved_reply_picker"),
    path("replies/<int:pk>/", workflow_views.saved_reply_edit, name="saved_reply_edit"),
    path("replies/<int:pk>/delete", workflow_views.saved_reply_delete, name="saved_reply_delete"),
    path("replies/<int:pk>/fill", workflow_views.saved_reply_fill, name="saved_reply_fill"),
    path("identity/<int:identity_id>/pacing", workflow_views.identity_pacing, name="identity_pacing"),
    path("identity/<int:identity_id>/account", workflow_views.identity_account_refresh,
         name="identity_account_refresh"),
]
