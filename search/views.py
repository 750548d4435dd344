from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import answers, services
from .forms import AskForm, SearchForm
from .models import ArchiveQuestion


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
    context = {"form": form, "results": results, "ask_form": AskForm(),
               "filter_fields": _filter_fields(form)}
    return render(request, template, context, status=status)


def _filter_fields(form: SearchForm) -> list[tuple[str, str]]:
    """The applied filters as (name, value) pairs: hidden inputs of the ask form."""
    if not form.is_bound:
        return []
    return [(name, value) for name in ("identity", "provider", "doc_type", "location", "date_from", "date_to",
                                       "include_hidden", "include_deleted")
            for value in form.data.getlist(name) if value]


@require_POST
def ask(request):
    form = AskForm(request.POST)
    asked, error = None, None
    if form.is_valid():
        try:
            asked = answers.request_answer(form.cleaned_data["question"], form.filters())
        except answers.AskRefused as exc:
            error = exc.user_message
    if asked is not None and not request.htmx:
        return redirect("search:answer", asked.pk)
    status = 200 if asked is not None or request.htmx else 400  # htmx 2 does not swap 4xx answers
    return render(request, "search/_answer.html", {"asked": asked, "ask_form": form, "ask_error": error},
                  status=status)


@require_GET
def answer(request, pk: int):
    asked = get_object_or_404(ArchiveQuestion.objects.select_related("job"), pk=pk)
    template = "search/_answer.html" if request.htmx else "search/answer.html"
    return render(request, template, {"asked": asked})
