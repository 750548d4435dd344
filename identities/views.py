from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from .models import Identity, Provider
from .onboarding import setup_status as compute_setup_status


@require_GET
def setup_status(request):
    return JsonResponse(compute_setup_status())


@require_GET
def identity_list(request):
    identities = Identity.objects.select_related("provider").order_by("provider_id", "-is_default", "display_name")
    return render(
        request,
        "identities/list.html",
        {"identities": identities, "providers": Provider.objects.filter(enabled=True)},
    )
