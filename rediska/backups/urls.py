from django.urls import path

from . import views

app_name = "backups"

urlpatterns = [
    path("", views.backup_list, name="list"),
    path("run/", views.backup_now, name="backup_now"),
    path("test/", views.restore_test_now, name="restore_test_now"),
    path("acknowledge/", views.acknowledge, name="acknowledge"),
]
