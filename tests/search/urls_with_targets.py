"""A URL conf with the pages search results link to, so link building can be tested on its own."""

from django.http import HttpResponse
from django.urls import include, path


def page(request, pk):
    return HttpResponse(str(pk))


inbox = ([path("conversations/<int:pk>/", page, name="conversation")], "inbox")
leads = ([path("<int:pk>/", page, name="lead_detail"), path("people/<int:pk>/", page, name="person")], "leads")

urlpatterns = [
    path("inbox/", include(inbox)),
    path("leads/", include(leads)),
    path("search/", include("search.urls")),
]
