from __future__ import annotations

from django import forms

from identities.models import Identity
from inbox.models import ExternalAccount, Label

from . import services
from .models import LeadPost, Watch

STATUS_FILTERS = [("", "Not ignored"), *LeadPost.Status.choices, ("any", "Any status")]
SORTS = [("new", "Newest first"), ("score", "Best score first")]


def _identities():
    return Identity.objects.filter(is_active=True).select_related("provider").order_by("-is_default",
                                                                                       "display_name")


class LeadFilterForm(forms.Form):
    location = forms.CharField(max_length=128, required=False)
    status = forms.ChoiceField(choices=STATUS_FILTERS, required=False)
    watch = forms.ModelChoiceField(queryset=Watch.objects.all(), required=False, empty_label="Any watch")
    since = forms.DateField(required=False, label="Posted from", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="to", widget=forms.DateInput(attrs={"type": "date"}))
    min_score = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score at least")
    new_only = forms.BooleanField(required=False, label="New since last visit")
    sort = forms.ChoiceField(choices=SORTS, required=False)
    label = forms.ModelChoiceField(queryset=Label.objects.order_by("key"), required=False,
                                   empty_label="Any label", label="Author's label",
                                   error_messages={"invalid_choice": "That label does not exist (any more)."})

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=LeadPost.Status.choices)


class _LocationMixin:
    def clean_location(self):
        try:
            return services.clean_location(self.cleaned_data["location"])
        except services.LeadsError as exc:
            raise forms.ValidationError(exc.user_message) from None

    def clean_query(self):
        try:
            return services.clean_query(self.cleaned_data.get("query"))
        except services.LeadsError as exc:
            raise forms.ValidationError(exc.user_message) from None


class WatchForm(_LocationMixin, forms.Form):
    identity = forms.ModelChoiceField(queryset=_identities(), empty_label=None, label="Browse as")
    location = forms.CharField(max_length=200)
    query = forms.CharField(max_length=300, required=False, label="Search words (optional)")
    sort = forms.ChoiceField(choices=Watch.Sort.choices)
    interval_minutes = forms.IntegerField(
        min_value=services.MIN_WATCH_INTERVAL // 60, max_value=services.MAX_WATCH_INTERVAL // 60,
        initial=60, label="Every (minutes)",
    )
    limit = forms.IntegerField(min_value=1, max_value=1000, initial=100, label="Posts per run")
    enabled = forms.BooleanField(required=False, initial=True)
    auto_score = forms.BooleanField(required=False, initial=True, label="Score new leads automatically",
                                    help_text="In the background, when a model is configured.")

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["identity"].queryset = _identities()
        if creating:
            del self.fields["enabled"]  # a new watch starts enabled

    @classmethod
    def for_watch(cls, watch: Watch) -> "WatchForm":
        return cls(initial={"identity": watch.identity_id, "location": watch.location, "query": watch.query,
                            "sort": watch.sort, "interval_minutes": watch.interval_seconds // 60,
                            "limit": watch.limit, "enabled": watch.enabled, "auto_score": watch.auto_score})


class BrowseForm(_LocationMixin, forms.Form):
    identity = forms.ModelChoiceField(queryset=_identities(), empty_label=None, label="Browse as")
    location = forms.CharField(max_length=200)
    query = forms.CharField(max_length=300, required=False, label="Search words (optional)")
    sort = forms.ChoiceField(choices=Watch.Sort.choices)
    limit = forms.IntegerField(min_value=1, max_value=services.MAX_BROWSE_LIMIT, initial=100, label="Posts")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "id_browse_%s")  # shares a page with the watch form
        super().__init__(*args, **kwargs)
        self.fields["identity"].queryset = _identities()


class DoNotContactForm(forms.Form):
    reason = forms.CharField(max_length=255, required=False)


class PeopleFilterForm(forms.Form):
    q = forms.CharField(max_length=128, required=False, label="Name contains")
    label = forms.ModelChoiceField(queryset=Label.objects.order_by("key"), required=False, empty_label="Any label",
                                   error_messages={"invalid_choice": "That label does not exist (any more)."})
    contact = forms.ChoiceField(choices=[("", "Any"), *ExternalAccount.ContactState.choices], required=False,
                                label="Contact")
    engagement = forms.ChoiceField(choices=[("", "Any"), *ExternalAccount.EngagementState.choices],
                                   required=False)
