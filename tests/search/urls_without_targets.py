"""A URL conf without the inbox and leads pages, so results that cannot be linked can be tested."""

from django.urls import include, path

urlpatterns = [path("search/", include("search.urls"))]
