"""Identity pages and the §9.1 endpoints (HTML by default, JSON for `Accept: application/json`)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseRedirect, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rediska import audit, exports
from rediska.jobs import enqueue
from rediska.providers import all_providers, get_provider
from rediska.providers.errors import ProviderError

from . import oauth, services
from .forms import (
    ConnectForm,
    DoNotContactForm,
    ExportConfirmForm,
    ExportUploadForm,
    FeedTokenForm,
    FeedTokenReplaceForm,
    IdentityForm,
    IdentityPatchForm,
    provider_choices,
)
from .models import DoNotContact, Identity, Provider
from .onboarding import setup_status as compute_setup_status
from .onboarding import wants_json
from .services import IdentityError


def identity_json(identity: Identity) -> dict:
    return {
        "id": identity.pk,
        "provider_id": identity.provider_id,
        "external_username": identity.external_username,
        "external_user_id": identity.external_user_id,
        "display_name": identity.display_name,
        "voice_config": identity.voice,
        "is_default": identity.is_default,
        "is_active": identity.is_active,
        "needs_reconnect": identity.needs_reconnect,
        "last_auth_error": identity.last_auth_error,
        "created_at": identity.created_at.isoformat(),
        "updated_at": identity.updated_at.isoformat() if identity.updated_at else None,
        "url": reverse("identities:detail", args=[identity.pk]),
    }


def _json_error(status: int, detail, error: str = "invalid") -> JsonResponse:
    return JsonResponse({"error": error, "detail": detail}, status=status)


def _form_detail(form) -> dict:
    return {field: [str(e) for e in errors] for field, errors in form.errors.items()}


def _groups(identities) -> list[dict]:
    """Identities grouped by provider (registry order), with each provider's default."""
    names = dict(Provider.objects.values_list("provider_id", "display_name"))
    providers = {p.provider_id: p for p in all_providers()}
    order = list(providers) + sorted(set(names) - set(providers))
    groups = {pid: {"provider_id": pid, "display_name": names.get(pid) or providers[pid].display_name,
                    "configured": pid in providers and providers[pid].is_configured(),
                    "feed_tokens": pid in providers and providers[pid].accepts_feed_tokens,
                    "identities": [], "default_identity_id": None} for pid in order}
    for identity in identities:
        group = groups.setdefault(identity.provider_id, {
            "provider_id": identity.provider_id, "display_name": identity.provider_id, "configured": False,
            "feed_tokens": False, "identities": [], "default_identity_id": None})
        group["identities"].append(identity)
        if identity.is_default:
            group["default_identity_id"] = identity.pk
    return list(groups.values())


# --------------------------------------------------------------------------- list / create
@require_http_methods(["GET", "POST"])
def identity_list(request):
    if request.method == "POST":
        return _create(request)
    identities = Identity.objects.select_related("provider").order_by("provider_id", "-is_default", "-is_active",
                                                                      "display_name", "id")
    groups = _groups(identities)
    if wants_json(request):
        return JsonResponse({"providers": [
            {**g, "identities": [identity_json(i) for i in g["identities"]]} for g in groups]})
    return render(request, "identities/list.html", {"groups": groups, "has_any": any(g["identities"] for g in groups)})


def _create(request):
    """POST /identities: validate, then send the browser to the provider's consent page."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return _json_error(400, "The body is not valid JSON.")
        form = ConnectForm(data=body if isinstance(body, dict) else {})
    else:
        form = ConnectForm(data=request.POST)
    if form.is_valid():
        try:
            url = oauth.begin(request, form.cleaned_data["provider_id"],
                              display_name=form.cleaned_data["display_name"])
        except ProviderError as exc:
            form.add_error(None, exc.user_message)
        else:
            if wants_json(request):
                return JsonResponse({"authorize_url": url, "expires_in": oauth.MAX_AGE}, status=201)
            return HttpResponseRedirect(url)
    if wants_json(request):
        return _json_error(400, _form_detail(form))
    return _connect_page(request, form=form, status=400)


def _connect_page(request, *, form=None, feed_form=None, onboarding: bool = False, status: int = 200):
    """The three ways in: an API app (OAuth), the feed token, or only the data export."""
    ways = []
    for provider in all_providers():
        if provider.provider_id not in dict(provider_choices()):
            continue
        ways.append({"provider": provider, "help": provider.connect_help(), "configured": provider.is_configured(),
                     "feed_tokens": provider.accepts_feed_tokens})
    initial = {"provider_id": ways[0]["provider"].provider_id} if ways else {}
    context = {"form": form or ConnectForm(initial=initial), "feed_form": feed_form or FeedTokenForm(initial=initial),
               "ways": ways, "oauth_ready": any(w["configured"] for w in ways),
               "feed_ready": any(w["feed_tokens"] for w in ways), "onboarding": onboarding,
               "single_provider": len(ways) == 1}
    return render(request, "identities/new.html", context, status=status)


@require_GET
def identity_new(request):
    return _connect_page(request)


@require_GET
def setup(request):
    return _connect_page(request, onboarding=True)


@require_POST
def connect_feed(request):
    """Connect with the personal feed token: checked by reading the private feed once."""
    form = FeedTokenForm(data=request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            identity = services.connect_feed_token(provider_id=data["provider_id"], text=data["feed_link"],
                                                   username=data["username"], display_name=data["display_name"])
        except IdentityError as exc:
            form.add_error("feed_link", exc.user_message)
        except ProviderError as exc:
            form.add_error(None, exc.user_message)
            audit.record("identity.connect", result="error", provider_id=data["provider_id"], error=exc.user_message)
            return _connect_page(request, feed_form=form, status=502 if exc.transient else 400)
        else:
            messages.success(request, f"Connected {identity.external_username} with its feed token as "
                                      f"“{identity.display_name}”.")
            return redirect("identities:detail", identity.pk)
    return _connect_page(request, feed_form=form, status=400)


@require_GET
def setup_status(request):
    return JsonResponse(compute_setup_status())


# --------------------------------------------------------------------------- OAuth
def _connect_failed(request, message: str, status: int, provider_id: str | None = None):
    audit.record("identity.connect", result="error", provider_id=provider_id, error=message)
    return render(request, "identities/connect_failed.html", {"message": message}, status=status)


@require_GET
def connect_callback(request):
    try:
        pending = oauth.consume(request, request.GET.get("state", ""))
    except oauth.StateError as exc:
        return _connect_failed(request, exc.user_message, 400)
    provider_id = pending["provider_id"]
    error = request.GET.get("error")
    if error:
        message = ("You declined access, so no identity was connected." if error == "access_denied"
                   else f"The provider refused the connection ({error[:64]}).")
        return _connect_failed(request, message, 400, provider_id)
    target = None
    if pending.get("identity_id"):
        target = Identity.objects.filter(pk=pending["identity_id"]).first()
        if target is None:
            return _connect_failed(request, "The identity to reconnect no longer exists.", 400, provider_id)
    try:
        provider = get_provider(provider_id)
        tokens = provider.exchange_code(request.GET.get("code", ""))
        account = provider.session(tokens.refresh_token).whoami()
        identity = services.connect_identity(provider_id=provider_id, refresh_token=tokens.refresh_token,
                                             account=account, display_name=pending.get("display_name"),
                                             identity=target)
    except IdentityError as exc:
        return _connect_failed(request, exc.user_message, 400, provider_id)
    except ProviderError as exc:
        return _connect_failed(request, exc.user_message, 502 if exc.transient else 400, provider_id)
    messages.success(request, f"Connected {identity.external_username} as “{identity.display_name}”"
                              + (", the default identity." if identity.is_default else "."))
    return redirect("identities:detail", identity.pk)


@require_POST
def identity_reconnect(request, pk: int):
    identity = get_object_or_404(Identity, pk=pk)
    try:
        url = oauth.begin(request, identity.provider_id, identity_id=identity.pk)
    except ProviderError as exc:
        if wants_json(request):
            return _json_error(400, exc.user_message)
        messages.error(request, exc.user_message)
        return redirect("identities:detail", identity.pk)
    if wants_json(request):
        return JsonResponse({"authorize_url": url, "expires_in": oauth.MAX_AGE}, status=201)
    return HttpResponseRedirect(url)


# --------------------------------------------------------------------------- one identity
def _respond(request, identity: Identity, *, status: int = 200, form=None):
    """JSON, the card fragment for HTMX, or back to the page."""
    if wants_json(request):
        return JsonResponse(identity_json(identity), status=status)
    if request.htmx:
        return render(request, "identities/_identity.html", {"identity": identity, "form": form}, status=status)
    return redirect("identities:detail", identity.pk)


@require_http_methods(["GET", "PATCH", "DELETE"])
def identity_detail(request, pk: int):
    identity = get_object_or_404(Identity.objects.select_related("provider").prefetch_related("credentials"), pk=pk)
    if request.method == "PATCH":
        return _patch(request, identity)
    if request.method == "DELETE":
        services.deactivate_identity(identity)
        return _respond(request, identity)
    if wants_json(request):
        return JsonResponse(identity_json(identity))
    return render(request, "identities/detail.html", {"identity": identity, "form": IdentityForm(initial=_initial(identity)),
                                                      **_access_context(identity)})


def _access_context(identity: Identity, *, feed_form=None) -> dict:
    """The identity page's "What this identity can do" section."""
    provider = get_provider(identity.provider_id)
    capabilities = services.capabilities_for(identity)
    labels = {"sync_received": "Keep received messages in sync", "sync_sent": "Keep sent messages in sync",
              "send": "Send from Rediska", "browse": "Find leads (browse and watches)",
              "read_profiles": "Read profiles"}
    return {"capabilities": capabilities,
            "capability_rows": [(labels[name], getattr(capabilities, name), capabilities.why_not(name))
                                for name in labels],
            "feed_token_masked": services.masked_feed_token(identity),
            "accepts_feed_tokens": provider.accepts_feed_tokens,
            "feed_help": provider.connect_help().get("feed_token", ""),
            "feed_form": feed_form or FeedTokenReplaceForm()}


@require_POST
def identity_feed_token(request, pk: int):
    """Add or replace this identity's feed token."""
    identity = get_object_or_404(Identity.objects.select_related("provider").prefetch_related("credentials"), pk=pk)
    form = FeedTokenReplaceForm(data=request.POST)
    status = 400
    if form.is_valid():
        try:
            services.connect_feed_token(provider_id=identity.provider_id, text=form.cleaned_data["feed_link"],
                                        identity=identity)
        except IdentityError as exc:
            form.add_error("feed_link", exc.user_message)
        except ProviderError as exc:
            form.add_error("feed_link", exc.user_message)
            status = 502 if exc.transient else 400
        else:
            messages.success(request, "Feed token saved and checked.")
            return redirect("identities:detail", identity.pk)
    identity = Identity.objects.select_related("provider").prefetch_related("credentials").get(pk=pk)
    return render(request, "identities/detail.html",
                  {"identity": identity, "form": IdentityForm(initial=_initial(identity)),
                   **_access_context(identity, feed_form=form)}, status=status)


@require_POST
def identity_feed_token_remove(request, pk: int):
    identity = get_object_or_404(Identity, pk=pk)
    if services.remove_feed_token(identity):
        messages.success(request, "The feed token was removed; this identity's conversations stay.")
    else:
        messages.info(request, "This identity had no feed token.")
    return redirect("identities:detail", identity.pk)


def _initial(identity: Identity) -> dict:
    return {"display_name": identity.display_name, **identity.voice}


def _patch(request, identity: Identity):
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return _json_error(400, "The body is not valid JSON.")
        form = IdentityPatchForm(body)
        if not form.is_valid():
            return _json_error(400, _form_detail(form))
        changes, make_default = form.changes(), form.make_default
    else:  # a form-encoded PATCH (hx-patch) carries the whole edit form
        form = IdentityForm(data=QueryDict(request.body))
        if not form.is_valid():
            if wants_json(request):
                return _json_error(400, _form_detail(form))
            return render(request, "identities/_identity.html", {"identity": identity, "form": form}, status=400)
        changes, make_default = form.changes(), False
    try:
        if changes:
            services.update_identity(identity, **changes)
        if make_default:
            services.set_default_identity(identity)
    except IdentityError as exc:
        return _json_error(400, exc.user_message) if wants_json(request) else \
            render(request, "identities/_identity.html", {"identity": identity, "form": form, "error": exc.user_message},
                   status=400)
    return _respond(request, identity, form=IdentityForm(initial=_initial(identity)))


@require_http_methods(["GET", "POST"])
def identity_edit(request, pk: int):
    identity = get_object_or_404(Identity.objects.select_related("provider"), pk=pk)
    form = IdentityForm(data=request.POST or None, initial=_initial(identity))
    if request.method == "POST":
        if form.is_valid():
            try:
                services.update_identity(identity, **form.changes())
            except IdentityError as exc:
                form.add_error(None, exc.user_message)
            else:
                messages.success(request, "Saved.")
                return redirect("identities:detail", identity.pk)
        return render(request, "identities/edit.html", {"identity": identity, "form": form}, status=400)
    return render(request, "identities/edit.html", {"identity": identity, "form": form})


@require_POST
def identity_set_default(request, pk: int):
    identity = get_object_or_404(Identity, pk=pk)
    try:
        services.set_default_identity(identity)
    except IdentityError as exc:
        if wants_json(request):
            return _json_error(400, exc.user_message)
        messages.error(request, exc.user_message)
        return redirect("identities:list")
    if wants_json(request):
        return JsonResponse(identity_json(identity))
    messages.success(request, f"“{identity.display_name}” is now the default identity.")
    return redirect("identities:list")


@require_POST
def identity_deactivate(request, pk: int):
    identity = get_object_or_404(Identity, pk=pk)
    services.deactivate_identity(identity)
    if wants_json(request):
        return JsonResponse(identity_json(identity))
    messages.success(request, f"“{identity.display_name}” is deactivated; its conversations stay readable.")
    return redirect("identities:detail", identity.pk)


# --------------------------------------------------------------------------- do not contact
@require_http_methods(["GET", "POST"])
def do_not_contact(request):
    form = DoNotContactForm(data=request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            already = services.is_do_not_contact(data["provider_id"], data["username"])
            try:
                entry = services.add_do_not_contact(data["provider_id"], data["username"], data["reason"])
            except IdentityError as exc:
                form.add_error("username", exc.user_message)
            else:
                messages.success(request, f"{entry.external_username} is already on the do-not-contact list"
                                          + (" (reason updated)." if data["reason"] else ".")
                                 if already else f"{entry.external_username} will not be contacted.")
                return redirect("identities:dnc")
        status = 400
    entries = DoNotContact.objects.select_related("provider").order_by("provider_id", "external_username")
    return render(request, "identities/do_not_contact.html",
                  {"form": form, "entries": entries, "show_provider": len(provider_choices()) > 1}, status=status)


@require_POST
def do_not_contact_remove(request, pk: int):
    entry = get_object_or_404(DoNotContact, pk=pk)
    services.remove_do_not_contact(entry.provider_id, entry.external_username)
    messages.success(request, f"{entry.external_username} was removed from the do-not-contact list.")
    return redirect("identities:dnc")


# --------------------------------------------------------------------------- from a data export
# The inbox's job key for an import (inbox.services.export_import.job_key): its panel lists the job.
IMPORT_TASK, IMPORT_KEY = "ingest.import_export", "inbox:{identity_id}:import:{token}"
SAMPLE_ROWS = 5000  # enough rows to tell whose export it is, read while the user waits


def _export_sample(provider_id: str, token: str):
    fmt = get_provider(provider_id).export_format()
    if fmt is None:
        raise exports.ExportError(f"{get_provider(provider_id).display_name} has no data export to import.")
    with exports.open_archive(exports.upload_path(token)) as archive:
        return exports.scan(archive, fmt, limit_rows=SAMPLE_ROWS)


@require_http_methods(["GET", "POST"])
def new_from_export(request):
    """An archive-only identity from a data export: upload, confirm the username read from it, import."""
    if request.method == "GET":
        return render(request, "identities/new_from_export.html", {"form": ExportUploadForm()})
    if "token" in request.POST:
        return _confirm_export(request)
    refused = exports.refused_upload(request)
    if refused:
        return render(request, "identities/new_from_export.html", {"form": ExportUploadForm(), "error": refused},
                      status=413)
    form = ExportUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "identities/new_from_export.html", {"form": form}, status=400)
    upload, provider_id = form.cleaned_data["export"], form.cleaned_data["provider_id"]
    token = None
    try:
        token = exports.save_upload(upload)
        sample = _export_sample(provider_id, token)
    except exports.ExportError as exc:
        if token:
            exports.discard_upload(token)
        form.add_error("export", exc.user_message)
        return render(request, "identities/new_from_export.html", {"form": form}, status=400)
    candidates = sample.candidates()
    confirm = ExportConfirmForm(initial={"provider_id": provider_id, "token": token, "original_name": upload.name,
                                         "username": candidates[0] if candidates else "",
                                         "display_name": form.cleaned_data["display_name"]})
    return render(request, "identities/new_from_export.html",
                  {"confirm": confirm, "candidates": candidates, "sample": sample, "file_name": upload.name})


def _confirm_export(request):
    confirm = ExportConfirmForm(request.POST)
    context = {"confirm": confirm, "candidates": [], "file_name": request.POST.get("original_name", "")[:255]}
    if not confirm.is_valid():
        return render(request, "identities/new_from_export.html", context, status=400)
    data = confirm.cleaned_data
    try:
        if not exports.upload_path(data["token"]).exists():
            raise exports.ExportError("This upload is no longer here: upload the export again.")
        sample = _export_sample(data["provider_id"], data["token"])
        context["candidates"] = sample.candidates()
        if not sample.owns(data["username"]):
            raise IdentityError(f"This export does not belong to {data['username']}: it belongs to "
                                f"{(sample.candidates(1) or ['somebody else'])[0]}.")
        with transaction.atomic():
            identity = services.create_archive_identity(provider_id=data["provider_id"], username=data["username"],
                                                        display_name=data["display_name"])
            enqueue(IMPORT_TASK, identity.pk, data["token"], original_name=data["original_name"] or "export.zip",
                    dedupe_key=IMPORT_KEY.format(identity_id=identity.pk, token=data["token"]))
    except (exports.ExportError, IdentityError) as exc:
        confirm.add_error(None, exc.user_message)
        return render(request, "identities/new_from_export.html", context, status=400)
    messages.success(request, f"“{identity.display_name}” was created from the export; its import is under way. "
                              "Connect it later to sync and send.")
    return redirect("identities:detail", identity.pk)
