from __future__ import annotations

from django import forms
from django.urls import reverse

from identities.models import Identity, Provider

from .answers import MAX_QUESTION_CHARS
from .backends.base import Filters
from .services import TYPE_LABELS, parse_date_bounds

MAX_QUERY_CHARS = 10_000


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off", "autofocus": True,
                                      "placeholder": "Words or a description of what you are looking for"}),
        error_messages={"max_length": f"Keep the query under {MAX_QUERY_CHARS:,} characters."},
    )
    identity = forms.ModelChoiceField(
        queryset=Identity.objects.select_related("provider"), required=False, empty_label="Any identity",
        help_text="Only that identity's conversations.",
    )
    provider = forms.ModelChoiceField(queryset=Provider.objects.all(), required=False, empty_label="Any provider")
    doc_type = forms.ChoiceField(label="Type", required=False, choices=[("", "Any type"), *TYPE_LABELS.items()])
    location = forms.CharField(label="Location", required=False, max_length=128)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    include_hidden = forms.BooleanField(label="Include hidden", required=False)
    include_deleted = forms.BooleanField(label="Include remotely deleted", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Live results while typing; the surrounding form's filters go along.
        self.fields["q"].widget.attrs.update(
            {
                "hx-get": reverse("search:search"),
                "hx-trigger": "input changed delay:300ms, search",
                "hx-target": "#search-results",
                "hx-push-url": "true",
                "hx-include": "closest form",
                "hx-sync": "closest form:queue last",  # not replace: htmx logs every aborted request as a console error
            }
        )

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> Filters:
        data = self.cleaned_data
        start, end = parse_date_bounds(data.get("date_from"), data.get("date_to"))
        return Filters(
            identity_id=str(data["identity"].pk) if data.get("identity") else None,
            provider_id=data["provider"].pk if data.get("provider") else None,
            doc_types=(data["doc_type"],) if data.get("doc_type") else (),
            source_location=data.get("location") or None,
            created_from=start,
            created_to=end,
            include_hidden=bool(data.get("include_hidden")),
            include_deleted=bool(data.get("include_deleted")),
        )


class AskForm(SearchForm):
    """A question for "Ask your archive", under the same filters as the search."""

    question = forms.CharField(
        label="Ask your archive",
        max_length=MAX_QUESTION_CHARS,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "e.g. Who offered to lend me a tent?"}),
        error_messages={"required": "Type a question to ask your archive.",
                        "max_length": f"Keep the question under {MAX_QUESTION_CHARS:,} characters."},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["q"].widget = forms.HiddenInput()

    def clean_question(self):
        question = self.cleaned_data["question"].strip()
        if not any(c.isalnum() for c in question):
            raise forms.ValidationError("Ask with words: the question has no letters or digits.")
        return question
