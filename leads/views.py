"""Leads pages: triage list, lead detail, person page, watches, images.

Refusals (bad filters, a status move the enum forbids, a bad watch) answer a
4xx with the reason on the page.  HTMX row actions answer the row fragment;
`static/js/leads.js` lets HTMX swap a 400 row so its reason shows in place.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce, Lower
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from identities.models import DoNotContact
from identities.onboarding import identity_required
from identities.services import IdentityError, add_do_not_contact, remove_do_not_contact
from inbox.models import AccountLabel, AccountNote, Attachment, Conversation, ExternalAccount
from inbox.services.ingest import PLACEHOLDERS
from rediska.csvexport import batches, csv_response

from . import media, services
from .forms import BrowseForm, DoNotContactForm, LeadFilterForm, PeopleFilterForm, StatusForm, WatchForm
from .models import AccountProfile, LeadPost, ProfileItem, Watch

PAGE_SIZE = 50


def _dnc_names(pairs) -> set[tuple[str, str]]:
    """(provider_id, lower-cased username) of the given pairs that are on the do-not-contact list."""
    pairs = {(p, u.lower()) for p, u in pairs if u}
    if not pairs:
        return set()
    rows = DoNotContact.objects.annotate(name=Lower("external_username")).filter(
        provider_id__in={p for p, _ in pairs}, name__in={u for _, u in pairs}
    ).values_list("provider_id", "name")
    return set(rows) & pairs


def _day_start(day) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def _filtered(form: LeadFilterForm):
    leads = LeadPost.objects.filter(deleted_at__isnull=True).select_related("author_account")
    data = form.cleaned_data
    watch = data.get("watch")
    leads = leads.annotate(is_new=services.new_since_visit_q(watch))
    if data.get("location"):
        leads = leads.filter(source_location__iexact=data["location"].strip())
    status = data.get("status")
    if status == "":
        leads = leads.exclude(status=LeadPost.Status.IGNORED)
    elif status != "any":
        leads = leads.filter(status=status)
    if watch is not None:
        leads = leads.filter(watch_hits__watch=watch)
    if data.get("since"):
        leads = leads.filter(post_created_at__gte=_day_start(data["since"]))
    if data.get("until"):
        leads = leads.filter(post_created_at__lt=_day_start(data["until"] + timedelta(days=1)))
    if data.get("min_score") is not None:
        leads = leads.filter(score__gte=data["min_score"])
    if data.get("new_only"):
        leads = leads.filter(is_new=True)
    if data.get("label"):
        leads = leads.filter(author_account__in=AccountLabel.objects.filter(label=data["label"]).values("account"))
    if data.get("sort") == "score":
        return leads.order_by(F("score").desc(nulls_last=True), F("post_created_at").desc(nulls_last=True), "-id")
    return leads.order_by(F("post_created_at").desc(nulls_last=True), "-id")


def _is_default_view(request) -> bool:
    return not any(v for k, v in request.GET.items() if k != "page")


@require_GET
@identity_required
def lead_list(request):
    form = LeadFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "leads/list.html", {"form": form, "page": None, "dnc": set()}, status=400)
    if not request.GET:
        form = LeadFilterForm({})
        form.is_valid()
    page = Paginator(_filtered(form), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page)
    dnc = _dnc_names((lead.provider_id, lead.author_account.external_username) for lead in rows
                     if lead.author_account)
    # Opening the list for a watch (or the plain list, for all watches) is a visit:
    # what was new stays marked on this render and is old from the next one.
    watch = form.cleaned_data.get("watch")
    if watch is not None and set(request.GET) <= {"watch", "page"}:
        services.visit_watches([watch])
    elif _is_default_view(request):
        services.visit_watches(Watch.objects.all())
    context = {"form": form, "page": page, "rows": rows, "dnc": dnc, "query": _query_without_page(request)}
    if request.htmx and not request.htmx.boosted:
        return render(request, "leads/_table.html", context)
    context["paused"] = list(Watch.objects.filter(paused_reason__isnull=False))
    return render(request, "leads/list.html", context)


def _query_without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _lead(pk: int) -> LeadPost:
    return get_object_or_404(LeadPost.objects.select_related("author_account"), pk=pk)


def _back(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


@require_POST
@identity_required
def lead_status(request, pk: int):
    lead = _lead(pk)
    form = StatusForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Choose one of: " + ", ".join(label for _, label in LeadPost.Status.choices) + "."
    else:
        try:
            lead = services.set_lead_status(lead, form.cleaned_data["status"])
        except services.InvalidStatusMove as exc:
            error = exc.user_message
    if request.htmx:
        author = lead.author_account
        dnc = _dnc_names([(lead.provider_id, author.external_username)] if author else [])
        return render(request, "leads/_row.html",
                      {"lead": lead, "dnc": dnc, "error": error, "next_url": _back(request, reverse("leads:list"))},
                      status=400 if error else 200)
    if error:
        return render(request, "leads/status_refused.html", {"lead": lead, "error": error}, status=400)
    messages.success(request, f"Lead marked {lead.get_status_display().lower()}.")
    return redirect(_back(request, reverse("leads:lead_detail", args=[lead.pk])))


@require_GET
@identity_required
def lead_detail(request, pk: int):
    lead = _lead(pk)
    author = lead.author_account
    items = []
    if author is not None:
        items = list(ProfileItem.objects.filter(account=author, deleted_at__isnull=True)
                     .select_related("attachment")[:30])
    dnc = _dnc_names([(lead.provider_id, author.external_username)] if author else [])
    watches = Watch.objects.filter(hits__lead_post=lead).distinct()
    return render(request, "leads/lead_detail.html", {
        "lead": lead, "author": author, "items": items, "dnc": dnc, "watches": watches,
        "moves": sorted(services.TRANSITIONS[lead.status]),
    })


@require_POST
@identity_required
def lead_refresh(request, pk: int):
    lead = _lead(pk)
    job = services.request_post_refresh(lead)
    messages.info(request, "Refreshing the post from the provider.")
    return redirect(reverse("job_detail", args=[job.pk]))


# --------------------------------------------------------------------------- people
@require_GET
@identity_required
def person(request, pk: int):
    account = get_object_or_404(ExternalAccount, pk=pk)
    items = ProfileItem.objects.filter(account=account, deleted_at__isnull=True)
    context = {
        "account": account,
        "profile": AccountProfile.objects.filter(account=account).first(),
        "posts": list(items.filter(item_type=ProfileItem.ItemType.POST)[:50]),
        "comments": list(items.filter(item_type=ProfileItem.ItemType.COMMENT)[:50]),
        "images": list(items.filter(item_type=ProfileItem.ItemType.IMAGE).select_related("attachment")[:48]),
        "leads": list(LeadPost.objects.filter(author_account=account, deleted_at__isnull=True)[:50]),
        "conversations": list(Conversation.objects.filter(counterpart_account=account)
                              .select_related("identity").order_by(F("last_activity_at").desc(nulls_last=True))),
        "dnc": DoNotContact.objects.filter(provider_id=account.provider_id,
                                           external_username__iexact=account.external_username).first(),
        "dnc_form": DoNotContactForm(),
        "jobs": services.profile_jobs(account),
    }
    return render(request, "leads/person.html", context)


@require_POST
@identity_required
def person_fetch(request, pk: int):
    account = get_object_or_404(ExternalAccount, pk=pk)
    services.request_profile_fetch(account)
    messages.info(request, f"Fetching {account.external_username}'s profile, posts and comments.")
    return redirect("leads:person", account.pk)


@require_POST
@identity_required
def person_dnc(request, pk: int):
    account = get_object_or_404(ExternalAccount, pk=pk)
    form = DoNotContactForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The reason is too long (at most 255 characters).")
        return redirect("leads:person", account.pk)
    try:
        if request.POST.get("action") == "remove":
            remove_do_not_contact(account.provider_id, account.external_username)
            messages.success(request, f"{account.external_username} was removed from the do-not-contact list.")
        else:
            add_do_not_contact(account.provider_id, account.external_username, form.cleaned_data["reason"])
            messages.success(request, f"{account.external_username} is on the do-not-contact list.")
    except IdentityError as exc:
        messages.error(request, exc.user_message)
    return redirect("leads:person", account.pk)


@require_GET
@identity_required
def image(request, pk: int):
    attachment = get_object_or_404(Attachment, pk=pk, deleted_at__isnull=True, mime_type__startswith="image/")
    try:
        path = media.path_of(attachment.storage_key)
        handle = path.open("rb")
    except (media.MediaError, OSError):
        raise Http404("The image file is missing.") from None
    response = FileResponse(handle, content_type=attachment.mime_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=86400"
    return response


# --------------------------------------------------------------------------- watches
def _watch_page(request, form: WatchForm, browse_form: BrowseForm, status: int = 200):
    return render(request, "leads/watches.html",
                  {"watches": services.watches_with_counts(), "form": form, "browse_form": browse_form},
                  status=status)


@require_http_methods(["GET", "POST"])
@identity_required
def watches(request):
    if request.method == "GET":
        return _watch_page(request, WatchForm(creating=True), BrowseForm())
    form = WatchForm(request.POST, creating=True)
    if not form.is_valid():
        return _watch_page(request, form, BrowseForm(), status=400)
    data = form.cleaned_data
    try:
        watch = services.create_watch(identity=data["identity"], location=data["location"], query=data["query"],
                                      sort=data["sort"], interval_seconds=data["interval_minutes"] * 60,
                                      limit=data["limit"], auto_score=data["auto_score"])
    except services.LeadsError as exc:
        form.add_error(None, exc.user_message)
        return _watch_page(request, form, BrowseForm(), status=400)
    messages.success(request, f"Watching {watch}: the first run starts within a minute.")
    return redirect("leads:watches")


@require_http_methods(["GET", "POST"])
@identity_required
def watch_edit(request, pk: int):
    watch = get_object_or_404(Watch.objects.select_related("identity"), pk=pk)
    if request.method == "GET":
        return render(request, "leads/watch_edit.html", {"watch": watch, "form": WatchForm.for_watch(watch)})
    form = WatchForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.update_watch(watch, identity=data["identity"], location=data["location"],
                                  query=data["query"], sort=data["sort"],
                                  interval_seconds=data["interval_minutes"] * 60, limit=data["limit"],
                                  enabled=data["enabled"], auto_score=data["auto_score"])
        except services.LeadsError as exc:
            form.add_error(None, exc.user_message)
        else:
            messages.success(request, "Watch saved.")
            return redirect("leads:watches")
    return render(request, "leads/watch_edit.html", {"watch": watch, "form": form}, status=400)


@require_POST
@identity_required
def watch_resume(request, pk: int):
    watch = get_object_or_404(Watch, pk=pk)
    services.resume_watch(watch)
    messages.success(request, f"{watch} resumed: it runs within a minute.")
    return redirect("leads:watches")


@require_POST
@identity_required
def watch_run(request, pk: int):
    watch = get_object_or_404(Watch, pk=pk)
    try:
        job = services.request_watch_run(watch)
    except services.LeadsError as exc:
        messages.error(request, exc.user_message)
        return redirect("leads:watches")
    return redirect("job_detail", job.pk)


@require_POST
@identity_required
def watch_delete(request, pk: int):
    watch = get_object_or_404(Watch, pk=pk)
    services.delete_watch(watch)
    messages.success(request, f"Stopped watching {watch}. The posts it found stay in the list.")
    return redirect("leads:watches")


@require_POST
@identity_required
def browse(request):
    form = BrowseForm(request.POST)
    if not form.is_valid():
        return _watch_page(request, WatchForm(creating=True), form, status=400)
    data = form.cleaned_data
    job = services.request_browse(identity=data["identity"], location=data["location"], sort=data["sort"],
                                  query=data["query"], limit=data["limit"])
    messages.info(request, f"Browsing {data['location']}.")
    return redirect("job_detail", job.pk)


# --------------------------------------------------------------------------- people list, CSV exports
def _count_of(model, field: str):
    """A correlated COUNT (no join fan-out, so the page's count query stays on the accounts alone)."""
    rows = model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk"))
    return Coalesce(Subquery(rows.values("n")[:1]), 0)


def _people(data: dict):
    people = ExternalAccount.objects.exclude(external_username__in=PLACEHOLDERS).order_by("external_username", "pk")
    if data.get("q"):
        people = people.filter(external_username__icontains=data["q"].strip())
    if data.get("label"):
        people = people.filter(pk__in=AccountLabel.objects.filter(label=data["label"]).values("account"))
    if data.get("contact"):
        people = people.filter(contact_state=data["contact"])
    if data.get("engagement"):
        people = people.filter(engagement_state=data["engagement"])
    return people


def _people_details(people):
    return people.annotate(
        conversation_count=_count_of(Conversation, "counterpart_account"),
        lead_count=_count_of(LeadPost, "author_account"),
    ).prefetch_related(Prefetch("label_links", queryset=AccountLabel.objects.select_related("label")
                                .order_by("label__key")))


@require_GET
@identity_required
def people(request):
    form = PeopleFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "leads/people.html", {"form": form, "page": None}, status=400)
    data = form.cleaned_data if form.is_bound else {}
    page = Paginator(_people(data).values_list("pk", flat=True), PAGE_SIZE).get_page(request.GET.get("page"))
    ids = list(page.object_list)
    rows = {a.pk: a for a in _people_details(ExternalAccount.objects.filter(pk__in=ids))} if ids else {}
    page.object_list = [rows[pk] for pk in ids if pk in rows]
    return render(request, "leads/people.html", {"form": form, "page": page, "query": _query_without_page(request),
                                                 "filtered": any(data.values())})


def _refused_export(request, form, back: str):
    errors = [str(e) for field in form.errors.values() for e in field]
    return render(request, "leads/export_refused.html", {"errors": errors, "back": back}, status=400)


def _labels_by_account(ids) -> dict[int, str]:
    names = defaultdict(list)
    for account_id, name in (AccountLabel.objects.filter(account_id__in=ids).order_by("label__key")
                             .values_list("account_id", "label__name")):
        names[account_id].append(name)
    return {k: ", ".join(v) for k, v in names.items()}


@require_GET
@identity_required
def people_export(request):
    """The people of the list's filters, as a streamed CSV, with your labels and notes."""
    form = PeopleFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return _refused_export(request, form, reverse("leads:people"))
    data = form.cleaned_data if form.is_bound else {}
    people = _people(data).annotate(
        conversation_count=_count_of(Conversation, "counterpart_account"),
        lead_count=_count_of(LeadPost, "author_account"),
    ).values("pk", "external_username", "remote_status", "contact_state", "engagement_state", "first_contacted_at",
             "conversation_count", "lead_count")
    person_url = reverse("leads:person", args=[0]).removesuffix("0/")
    base = request.build_absolute_uri(person_url)
    header = ["account_id", "username", "status", "contact", "engagement", "first_contacted", "labels", "notes",
              "conversations", "leads", "url"]

    def rows():
        for batch in batches(people):
            ids = [a["pk"] for a in batch]
            tags = _labels_by_account(ids)
            notes = defaultdict(list)
            for account_id, body in (AccountNote.objects.filter(account_id__in=ids).order_by("created_at", "pk")
                                     .values_list("account_id", "body")):
                notes[account_id].append(body)
            for a in batch:
                yield [a["pk"], a["external_username"], a["remote_status"], a["contact_state"],
                       a["engagement_state"], a["first_contacted_at"], tags.get(a["pk"], ""),
                       "\n---\n".join(notes.get(a["pk"], [])), a["conversation_count"], a["lead_count"],
                       f"{base}{a['pk']}/"]

    return csv_response("people", header, rows())


@require_GET
@identity_required
def lead_export(request):
    """The leads of the list's filters (any page), as a streamed CSV."""
    form = LeadFilterForm(request.GET or {})
    if not form.is_valid():
        return _refused_export(request, form, reverse("leads:list"))
    leads = _filtered(form).values("pk", "title", "author_account_id", "author_account__external_username",
                                   "source_location", "post_created_at", "status", "score", "score_reasons_json",
                                   "post_url")
    header = ["lead_id", "title", "author", "location", "posted", "status", "score", "top_reason", "author_labels",
              "post_url"]

    def rows():
        for batch in batches(leads):
            tags = _labels_by_account({lead["author_account_id"] for lead in batch if lead["author_account_id"]})
            for lead in batch:
                reasons = lead["score_reasons_json"] if isinstance(lead["score_reasons_json"], list) else []
                yield [lead["pk"], lead["title"], lead["author_account__external_username"] or "",
                       lead["source_location"], lead["post_created_at"], lead["status"], lead["score"],
                       reasons[0] if reasons else "", tags.get(lead["author_account_id"], ""), lead["post_url"]]

    return csv_response("leads", header, rows())
