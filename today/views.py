"""Today (the home page) and the notifications settings page with its test button."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from identities.onboarding import identity_required
from rediska import notify

from . import services, tasks
from .forms import TestNotificationForm


@identity_required
@require_GET
def today(request):
    context = {"sections": services.today(), "notifications_on": bool(settings.NOTIFY_URLS)}
    return render(request, "today/today.html", context)


def _notifications_page(request, *, results=None, status: int = 200):
    context = {
        "targets": len(settings.NOTIFY_URLS),
        "events": sorted(settings.NOTIFY_EVENTS),
        "lead_min_score": settings.NOTIFY_LEAD_MIN_SCORE,
        "digest_minutes": settings.NOTIFY_DIGEST_MINUTES,
        "recent": notify.recent(),
        "pending": notify.pending_count(),
        "results": results,
        "form": TestNotificationForm(),
    }
    template = "today/_test_results.html" if request.htmx and results is not None else "today/notifications.html"
    return render(request, template, context, status=status)


@require_GET
def notifications(request):
    return _notifications_page(request)


@require_POST
def notifications_test(request):
    """Send a test message to every notification URL now and show what each one did."""
    form = TestNotificationForm(request.POST)
    if not form.is_valid():
        return _notifications_page(request, results=[], status=400)
    if not settings.NOTIFY_URLS:
        return _notifications_page(request, results=[], status=409)
    # Through the ledger (a job row), in-process: the answer is needed on this page.
    results = tasks.send_test_notification()
    failed = any(not r["ok"] for r in results)
    # htmx swaps only 2xx answers: the fragment says per URL what failed.
    return _notifications_page(request, results=results, status=502 if failed and not request.htmx else 200)
