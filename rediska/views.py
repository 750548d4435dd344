from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import audit, throttle
from .forms import JobFilterForm, LoginForm
from .health import run_checks
from .models import Job


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


@login_not_required
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def login_view(request):
    if request.user.is_authenticated:
        return redirect("home")
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = ""
    form = LoginForm(request, data=request.POST or None)
    status, refusal = 200, None
    if request.method == "POST":
        username = (request.POST.get("username") or "")[:150]
        ip = _client_ip(request)
        wait = throttle.seconds_blocked(username, ip)
        if wait:
            minutes = max(1, round(wait / 60))
            # Refused before authenticating: the password is not even checked.
            form = LoginForm(request, initial={"username": username})
            refusal = f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            audit.record("auth.login", result="error", request={"username": username}, error="throttled")
            status = 429
        elif form.is_valid():
            login(request, form.get_user())
            throttle.reset(username)
            audit.record("auth.login", request={"username": username})
            return redirect(next_url or "home")
        else:
            throttle.register_failure(username, ip)
            audit.record("auth.login", result="error", request={"username": username}, error="bad credentials")
            status = 400
    return render(request, "registration/login.html", {"form": form, "next": next_url, "refusal": refusal}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    messages.info(request, "Signed out.")
    return redirect("login")


@login_not_required
@never_cache
@require_GET
def healthz(request):
    checks = run_checks()
    healthy = all(c["status"] == "ok" for c in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503)


@require_GET
def job_list(request):
    form = JobFilterForm(request.GET or None)
    jobs = Job.objects.all()
    if form.is_valid():
        if form.cleaned_data["status"]:
            jobs = jobs.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["job_type"]:
            jobs = jobs.filter(job_type__startswith=form.cleaned_data["job_type"])
    page = Paginator(jobs.defer("payload_json", "last_error"), 50).get_page(request.GET.get("page"))
    any_active = any(job.is_active for job in page)
    template = "rediska/_job_table.html" if request.htmx else "rediska/jobs.html"
    return render(request, template, {"form": form, "page": page, "any_active": any_active})


@require_GET
def job_detail(request, pk: int):
    job = get_object_or_404(Job, pk=pk)
    template = "rediska/_job_detail.html" if request.htmx else "rediska/job_detail.html"
    return render(request, template, {"job": job})
