from django import forms

from identities.models import Identity

from .models import Label, Message
from .services import replies
from .services.labels import MAX_LABEL, MAX_NOTE
from .services.sending import MAX_BODY, new_idempotency_key


def refuse_placeholders(body: str) -> str:
    """A message that still has a saved reply's placeholder in it is not sent with braces."""
    left = replies.unfilled_placeholders(body)
    if left:
        raise forms.ValidationError(
            f"The message still contains {', '.join(left)}: replace {'them' if len(left) > 1 else 'it'} "
            "with the real text before sending.")
    return body


class ConversationFilterForm(forms.Form):
    identity = forms.ModelChoiceField(
        queryset=Identity.objects.order_by("display_name"), required=False, empty_label="All identities"
    )
    direction = forms.ChoiceField(
        choices=[("", "Any")] + list(Message.Direction.choices), required=False, label="Last message"
    )
    needs_reply = forms.BooleanField(required=False, label="Needs reply")
    since = forms.DateField(required=False, label="Active since", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Active until", widget=forms.DateInput(attrs={"type": "date"}))
    hidden = forms.BooleanField(required=False, label="Show hidden")
    # Conversation state (issue 15): the default list leaves snoozed conversations out.
    state = forms.ChoiceField(choices=[("", "Not snoozed"), ("unread", "Unread"), ("snoozed", "Snoozed"),
                                       ("follow_up", "Follow-up set")], required=False, label="State")
    label = forms.ModelChoiceField(queryset=Label.objects.order_by("key"), required=False, empty_label="Any label",
                                   error_messages={"invalid_choice": "That label does not exist (any more)."})

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("“Active since” must not be after “Active until”.")
        return data


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Reply", max_length=MAX_BODY, strip=False,
        widget=forms.Textarea(attrs={"id": "reply-body", "rows": 6, "required": True}),
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)

    def clean_body(self):
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Write a message first.")
        return refuse_placeholders(body)


class HiddenForm(forms.Form):
    hidden = forms.TypedChoiceField(choices=[("1", "Hide"), ("0", "Unhide")], coerce=lambda v: v == "1")


class MessageHiddenForm(HiddenForm):
    message = forms.IntegerField(min_value=1)


class ExportUploadForm(forms.Form):
    export = forms.FileField(label="Data export (.zip)", allow_empty_file=False,
                             widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}))
# --- conversation state (read/unread, snooze, follow-up) ------------------------------


class ReadForm(forms.Form):
    unread = forms.TypedChoiceField(choices=[("1", "Mark unread"), ("0", "Mark read")], coerce=lambda v: v == "1")


class SnoozeForm(forms.Form):
    """Snooze for a number of days, until a date and time, or until they reply (exactly one)."""

    days = forms.IntegerField(required=False, min_value=1, max_value=366)
    until = forms.DateTimeField(
        required=False, label="Until", input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until_reply = forms.BooleanField(required=False, label="Until they reply")

    def clean(self):
        data = super().clean()
        chosen = [name for name in ("days", "until", "until_reply") if data.get(name)]
        if not self.errors and len(chosen) != 1:
            raise forms.ValidationError("Choose one: a number of days, a date, or until they reply.")
        return data


class FollowUpForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=90, label="Remind me in (days)",
                              error_messages={"min_value": "Choose between 1 and 90 days.",
                                              "max_value": "Choose between 1 and 90 days."})
class LabelForm(forms.Form):
    name = forms.CharField(label="Label", max_length=MAX_LABEL, strip=True,
                           error_messages={"required": "Write a label first.",
                                           "max_length": f"A label is at most {MAX_LABEL} characters."})


class NoteForm(forms.Form):
    body = forms.CharField(label="Note", max_length=MAX_NOTE, widget=forms.Textarea(attrs={"rows": 3}),
                           error_messages={"required": "Write the note first.",
                                           "max_length": f"A note is at most {MAX_NOTE:,} characters."})


class SavedReplyForm(forms.Form):
    title = forms.CharField(max_length=replies.MAX_TITLE)
    body = forms.CharField(label="Text", max_length=replies.MAX_BODY, strip=False,
                           widget=forms.Textarea(attrs={"rows": 6}))

    def clean_body(self):
        body = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("Write the text of the reply.")
        unknown = replies.unknown_placeholders(body)
        if unknown:
            raise forms.ValidationError(
                f"Unknown placeholder{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                f"use only {replies.placeholder_list()}.")
        return body


class FillForm(forms.Form):
    """Who a saved reply is filled in for: a conversation, or a person and an identity (and their post)."""

    conversation = forms.IntegerField(min_value=1, required=False)
    account = forms.IntegerField(min_value=1, required=False)
    identity = forms.IntegerField(min_value=1, required=False)
    post = forms.IntegerField(min_value=1, required=False)
    target = forms.RegexField(regex=r"^[A-Za-z][A-Za-z0-9_-]{0,40}$", required=False)

    def clean(self):
        data = super().clean()
        if not self.errors and not data.get("conversation") and not data.get("account"):
            raise forms.ValidationError("Say which conversation or person the reply is for.")
        return data


class PacingForm(forms.Form):
    first_messages_per_day = forms.IntegerField(
        min_value=0, max_value=1000, required=False, label="First messages to new people per day",
        help_text="Empty: the default for this account's age.")
