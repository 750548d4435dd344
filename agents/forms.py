from django import forms

from identities.models import Identity
from inbox.forms import refuse_placeholders


class IntroDraftForm(forms.Form):
    """Which persona the intro is written as (an active identity of the post's network)."""

    identity = forms.ModelChoiceField(queryset=Identity.objects.none(), empty_label=None, label="Write as")

    def __init__(self, *args, provider_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["identity"]
        field.queryset = Identity.objects.filter(provider_id=provider_id, is_active=True).order_by(
            "-is_default", "display_name"
        )
        default = field.queryset.first()
        if default is not None:
            field.initial = default.pk
        field.error_messages["invalid_choice"] = "Choose one of your active identities on this network."


class DraftForm(forms.Form):
    subject = forms.CharField(max_length=300, required=False, label="Subject")
    body = forms.CharField(
        max_length=10_000, label="Message", strip=True,
        widget=forms.Textarea(attrs={"rows": 10, "id": "draft-body"}),
        error_messages={"required": "The message is empty."},
    )
    action = forms.ChoiceField(choices=[("save", "Save"), ("send", "Send"), ("open_on_site", "Open to send"),
                                        ("sent_by_hand", "I sent it")], required=False)

    def __init__(self, *args, first_message: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_message = first_message  # a new conversation needs a subject

    def clean(self):
        data = super().clean()
        data["action"] = data.get("action") or "save"
        if data["action"] != "save" and self.first_message and not data.get("subject"):
            self.add_error("subject", "A first message needs a subject.")
        if data["action"] == "send" and data.get("body"):
            try:
                refuse_placeholders(data["body"])
            except forms.ValidationError as exc:
                self.add_error("body", exc)
        return data


class DiscardForm(forms.Form):
    reason = forms.CharField(
        max_length=255, label="Why discard it?", error_messages={"required": "Say why you discard this draft."}
    )


class CallFilterForm(forms.Form):
    job = forms.IntegerField(required=False, min_value=1)
    snapshot = forms.IntegerField(required=False, min_value=1)
    operation = forms.CharField(required=False, max_length=64)
