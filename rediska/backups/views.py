from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from rediska.models import Job

from . import services
from .errors import BackupError
from .forms import AcknowledgeForm, BackupNowForm, RestoreTestForm


@require_GET
def backup_list(request):
    try:
        backups, problem = services.list_backups(), None
    except BackupError as exc:
        backups, problem = [], exc.user_message
    runs = list(Job.objects.filter(job_type__in=services.MAINTENANCE_TASKS)
                .defer("payload_json").order_by("-pk")[:10])
    context = {"backups": backups, "problem": problem, "runs": runs, "any_active": any(j.is_active for j in runs),
               "backups_path": settings.BACKUPS_PATH, "keep": settings.BACKUP_KEEP}
    template = "backups/_runs.html" if request.htmx else "backups/list.html"
    return render(request, template, context)


@require_POST
def backup_now(request):
    form = BackupNowForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose what to back up: full or attachments.")
    task = services.BACKUP_TASK if form.cleaned_data["kind"] == services.FULL else services.SNAPSHOT_TASK
    job, queued = services.request_task(task)
    if queued:
        messages.success(request, f"Backup queued (job {job.pk}).")
    else:
        messages.info(request, f"A backup is already {job.status} (job {job.pk}).")
    return redirect("backups:list")


@require_POST
def restore_test_now(request):
    form = RestoreTestForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("That is not a backup name.")
    job, queued = services.request_task(services.RESTORE_TEST_TASK, backup=form.cleaned_data["backup"] or None)
    if queued:
        messages.success(request, f"Restore test queued (job {job.pk}).")
    else:
        messages.info(request, f"A restore test is already {job.status} (job {job.pk}).")
    return redirect("backups:list")


@require_POST
def acknowledge(request):
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("There is no such failed backup or restore test.")
    services.acknowledge_failures(form.cleaned_data["job"])
    messages.info(request, "Acknowledged. The failure stays listed on the Jobs page.")
    next_url = form.cleaned_data["next"]
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return redirect("backups:list")
    return redirect(next_url)
