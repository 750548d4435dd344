from django.urls import path

from . import views

app_name = "agents"

urlpatterns = [
    path("accounts/<int:account_id>/", views.account_panel, name="account_panel"),
    path("accounts/<int:account_id>/analyse/", views.analyse_profile, name="analyse_profile"),
    path("leads/<int:lead_post_id>/", views.lead_panel, name="lead_panel"),
    path("leads/<int:lead_post_id>/score/", views.score_lead, name="score_lead"),
    path("leads/<int:lead_post_id>/draft/", views.draft_intro, name="draft_intro"),
    path("conversations/<int:conversation_id>/", views.conversation_panel, name="conversation_panel"),
    path("conversations/<int:conversation_id>/suggest/", views.suggest_reply, name="suggest_reply"),
    path("drafts/<int:pk>/", views.draft_detail, name="draft_detail"),
    path("drafts/<int:pk>/discard/", views.draft_discard, name="draft_discard"),
    path("drafts/<int:pk>/regenerate/", views.draft_regenerate, name="draft_regenerate"),
    path("snapshots/<int:pk>/", views.snapshot_detail, name="snapshot_detail"),
    path("calls/", views.call_list, name="calls"),
    path("calls/<int:pk>/", views.call_detail, name="call_detail"),
]
