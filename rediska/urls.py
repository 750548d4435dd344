from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("admin/", admin.site.urls),
    path("", include("identities.urls")),
    path("inbox/", include("inbox.urls")),
    path("leads/", include("leads.urls")),
    path("agents/", include("agents.urls")),
    path("search/", include("search.urls")),
    path("backups/", include("rediska.backups.urls")),
    # Today (the home page, name "home") and the notifications page.
    path("", include("today.urls")),
]

handler400 = "rediska.errors.bad_request"
handler403 = "rediska.errors.permission_denied"
handler404 = "rediska.errors.page_not_found"
handler500 = "rediska.errors.server_error"
