from __future__ import annotations

from django import forms

from rediska.providers import all_providers, get_provider

from .models import Provider

VOICE_HELP = {
    "system_prompt": "How drafts in this identity's voice should sound: who you are, what you care about.",
    "tone": "e.g. warm, dry, playful",
    "style": "e.g. short sentences, no emoji",
}


def provider_choices() -> list[tuple[str, str]]:
    """Providers known to the code and not disabled in the providers table."""
    disabled = set(Provider.objects.filter(enabled=False).values_list("provider_id", flat=True))
    return [(p.provider_id, p.display_name) for p in all_providers() if p.provider_id not in disabled]


class ProviderField(forms.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=provider_choices, label="Provider",
                         error_messages={"invalid_choice": "Unknown provider: %(value)s."}, **kwargs)


class ConnectForm(forms.Form):
    provider_id = ProviderField()
    display_name = forms.CharField(max_length=128, required=False, label="Display name",
                                   help_text="Shown in Rediska only; defaults to the account's username.")


def feed_provider_choices() -> list[tuple[str, str]]:
    return [(pid, name) for pid, name in provider_choices() if get_provider(pid).accepts_feed_tokens]


class FeedLinkField(forms.CharField):
    """A pasted private feed link or bare token: a secret, so never rendered back into the page."""

    def __init__(self, **kwargs):
        super().__init__(max_length=2000, label="Private feed link (or the feed token)", strip=True,
                         widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off",
                                                                                "spellcheck": "false"}),
                         **kwargs)


class FeedTokenForm(forms.Form):
    provider_id = forms.ChoiceField(choices=feed_provider_choices, label="Provider",
                                    error_messages={"invalid_choice": "Unknown provider: %(value)s."})
    feed_link = FeedLinkField()
    username = forms.CharField(max_length=128, required=False, label="Username",
                               help_text="Only needed when you paste the bare token instead of the link.")
    display_name = forms.CharField(max_length=128, required=False, label="Display name",
                                   help_text="Shown in Rediska only; defaults to the account's username.")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "feed_%s")  # the API app's form is on the same page
        super().__init__(*args, **kwargs)


class FeedTokenReplaceForm(forms.Form):
    feed_link = FeedLinkField()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "feed_%s")
        super().__init__(*args, **kwargs)


class VoiceFields(forms.Form):
    system_prompt = forms.CharField(max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 5}),
                                    label="Voice: system prompt", help_text=VOICE_HELP["system_prompt"])
    tone = forms.CharField(max_length=200, required=False, label="Tone", help_text=VOICE_HELP["tone"])
    style = forms.CharField(max_length=200, required=False, label="Style", help_text=VOICE_HELP["style"])


class IdentityForm(VoiceFields):
    """The edit page (and a form-encoded PATCH from HTMX)."""

    display_name = forms.CharField(max_length=128, label="Display name")
    field_order = ["display_name", "system_prompt", "tone", "style"]

    def changes(self) -> dict:
        data = self.cleaned_data
        return {"display_name": data["display_name"],
                "voice": {key: data[key] for key in ("system_prompt", "tone", "style")}}


class IdentityPatchForm(forms.Form):
    """A JSON PATCH body (§9.1): any of display_name, voice_config {system_prompt, tone, style}, is_default."""

    display_name = forms.CharField(max_length=128, required=False)
    ALLOWED = ("display_name", "voice_config", "is_default")

    def __init__(self, body):
        self.body = body if isinstance(body, dict) else {}
        self.voice_form = None
        name = self.body.get("display_name")
        super().__init__(data={"display_name": name if isinstance(name, str) else ""})
        if not isinstance(body, dict):
            self.body = None

    def clean(self):
        cleaned = super().clean()
        if self.body is None:
            raise forms.ValidationError("The body must be a JSON object.")
        unknown = set(self.body) - set(self.ALLOWED)
        if unknown:
            raise forms.ValidationError(f"Unknown fields: {', '.join(sorted(unknown))}.")
        if not self.body:
            raise forms.ValidationError("Nothing to change.")
        if "display_name" in self.body and not (cleaned.get("display_name") or "").strip():
            self.add_error("display_name", "A display name is 1 to 128 characters of text.")
        if "voice_config" in self.body:
            voice = self.body["voice_config"]
            if not isinstance(voice, dict) or not all(isinstance(v, str) for v in voice.values()):
                self.add_error(None, "voice_config is an object of texts: {system_prompt, tone, style}.")
            elif set(voice) - set(VoiceFields.base_fields):
                self.add_error(None, f"Unknown voice settings: {', '.join(sorted(set(voice) - set(VoiceFields.base_fields)))}.")
            else:
                self.voice_form = VoiceFields(data=voice)
                if not self.voice_form.is_valid():
                    for key, errors in self.voice_form.errors.items():
                        self.add_error(None, f"voice_config.{key}: {' '.join(errors)}")
        if "is_default" in self.body and self.body["is_default"] is not True:
            self.add_error(None, "is_default accepts only true: make another identity the default instead.")
        return cleaned

    def changes(self) -> dict:
        changes = {}
        if "display_name" in self.body:
            changes["display_name"] = self.cleaned_data["display_name"]
        if self.voice_form is not None:
            changes["voice"] = {key: self.voice_form.cleaned_data[key] for key in self.body["voice_config"]}
        return changes

    @property
    def make_default(self) -> bool:
        return self.body.get("is_default") is True


class DoNotContactForm(forms.Form):
    provider_id = ProviderField()
    username = forms.CharField(max_length=128, label="Username")
    reason = forms.CharField(max_length=255, required=False, label="Reason",
                             help_text="Kept for you only, e.g. “asked not to be contacted”.")

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        if any(c.isspace() for c in name):
            raise forms.ValidationError("A username has no spaces.")
        return name


class ExportUploadForm(forms.Form):
    """Step 1 of an identity from a data export: the ZIP."""

    provider_id = ProviderField()
    export = forms.FileField(label="Data export (.zip)", allow_empty_file=False,
                             widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}))
    display_name = forms.CharField(max_length=128, required=False, label="Display name",
                                   help_text="Shown in Rediska only; defaults to the account's username.")


class ExportConfirmForm(forms.Form):
    """Step 2: the username read from the export, as the user confirms it."""

    provider_id = ProviderField(widget=forms.HiddenInput)
    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput,
                             error_messages={"invalid": "This upload is not known here: upload the export again."})
    original_name = forms.CharField(max_length=255, required=False, widget=forms.HiddenInput)
    username = forms.CharField(max_length=128, label="Your username",
                               help_text="Read from the export: the account that sent or received every message.")
    display_name = forms.CharField(max_length=128, required=False, label="Display name")

    def clean_username(self):
        name = self.cleaned_data["username"].strip()
        if any(c.isspace() for c in name):
            raise forms.ValidationError("A username has no spaces.")
        return name
