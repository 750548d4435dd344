from django.urls import path

from . import views

# No namespace for the home page: the whole app redirects to "home".
urlpatterns = [
    path("", views.today, name="home"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/test", views.notifications_test, name="notifications_test"),
]
