"""The onboarding gate (spec §9.3): nothing is usable without an active identity."""

from __future__ import annotations

import functools

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from .models import Identity, Provider

SETUP_MESSAGE = "Connect an identity first: Rediska acts only through one of your identities."


def has_active_identity() -> bool:
    return Identity.objects.filter(is_active=True).exists()


def setup_status() -> dict:
    providers = list(Provider.objects.filter(enabled=True))
    identities = list(Identity.objects.filter(is_active=True).values("id", "provider_id", "is_default"))
    return {
        "complete": bool(identities),
        "active_identities": len(identities),
        "providers": [
            {
                "provider_id": p.provider_id,
                "display_name": p.display_name,
                "active_identities": sum(1 for i in identities if i["provider_id"] == p.provider_id),
                "default_identity_id": next(
                    (i["id"] for i in identities if i["provider_id"] == p.provider_id and i["is_default"]), None
                ),
            }
            for p in providers
        ],
        "setup_url": reverse("identities:setup"),
    }


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "") and "text/html" not in request.headers.get(
        "Accept", ""
    )


def identity_required(view):
    """Redirect to identity setup until at least one active identity exists."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if has_active_identity():
            return view(request, *args, **kwargs)
        url = reverse("identities:setup")
        if wants_json(request):
            return JsonResponse({"error": "setup_required", "detail": SETUP_MESSAGE, "setup_url": url}, status=409)
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(url)
        messages.info(request, SETUP_MESSAGE)
        return redirect(url)

    return wrapper
