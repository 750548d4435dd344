from django.urls import path

from . import views

app_name = "identities"

urlpatterns = [
    path("identities", views.identity_list, name="list"),
    path("identities/new", views.identity_new, name="new"),
    path("identities/connect/callback", views.connect_callback, name="callback"),
    path("identities/<int:pk>", views.identity_detail, name="detail"),
    path("identities/<int:pk>/edit", views.identity_edit, name="edit"),
    path("identities/<int:pk>/set-default", views.identity_set_default, name="set_default"),
    path("identities/<int:pk>/deactivate", views.identity_deactivate, name="deactivate"),
    path("identities/<int:pk>/reconnect", views.identity_reconnect, name="reconnect"),
    path("do-not-contact", views.do_not_contact, name="dnc"),
    path("do-not-contact/<int:pk>/remove", views.do_not_contact_remove, name="dnc_remove"),
    path("setup/", views.setup, name="setup"),
    path("setup/status", views.setup_status, name="setup_status"),
    # Feed token (connect, replace, remove)
    path("identities/connect/feed-token", views.connect_feed, name="connect_feed"),
    path("identities/<int:pk>/feed-token", views.identity_feed_token, name="feed_token"),
    path("identities/<int:pk>/feed-token/remove", views.identity_feed_token_remove, name="feed_token_remove"),
    path("identities/new/from-export", views.new_from_export, name="new_from_export"),
]
