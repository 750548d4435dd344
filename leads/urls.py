from django.urls import path

from . import views

app_name = "leads"

urlpatterns = [
    path("", views.lead_list, name="list"),
    path("<int:pk>/", views.lead_detail, name="lead_detail"),
    path("<int:pk>/status/", views.lead_status, name="lead_status"),
    path("<int:pk>/refresh/", views.lead_refresh, name="lead_refresh"),
    path("people/<int:pk>/", views.person, name="person"),
    path("people/<int:pk>/fetch/", views.person_fetch, name="person_fetch"),
    path("people/<int:pk>/do-not-contact/", views.person_dnc, name="person_dnc"),
    path("images/<int:pk>/", views.image, name="image"),
    path("watches/", views.watches, name="watches"),
    path("watches/<int:pk>/", views.watch_edit, name="watch_edit"),
    path("watches/<int:pk>/resume/", views.watch_resume, name="watch_resume"),
    path("watches/<int:pk>/run/", views.watch_run, name="watch_run"),
    path("watches/<int:pk>/delete/", views.watch_delete, name="watch_delete"),
    path("browse/", views.browse, name="browse"),
    # workflow: the people list and the CSV exports
    path("export.csv", views.lead_export, name="export"),
    path("people/", views.people, name="people"),
    path("people/export.csv", views.people_export, name="people_export"),
]
