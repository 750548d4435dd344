from django.urls import path

from . import views

app_name = "identities"

urlpatterns = [
    path("identities", views.identity_list, name="list"),
    path("setup/", views.identity_list, name="setup"),
    path("setup/status", views.setup_status, name="setup_status"),
]
