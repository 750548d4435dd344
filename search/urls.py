from django.urls import path

from . import views

app_name = "search"

urlpatterns = [
    path("", views.search, name="search"),
    path("ask", views.ask, name="ask"),
    path("ask/<int:pk>", views.answer, name="answer"),
]
