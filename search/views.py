from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import services
from .forms import SearchForm


@require_GET
def search(request):
    # Always bound: a visit without a query lists the newest items.
    form = SearchForm(request.GET)
    results, status = None, 200
    if form.is_valid():
        results = services.search_content(form.cleaned_data["q"], form.filters())
    elif not request.htmx:
        status = 400  # htmx 2 does not swap 4xx answers: live results show the errors with a 200
    template = "search/_results.html" if request.htmx else "search/search.html"
    return render(request, template, {"form": form, "results": results}, status=status)
