"""Admin for providers, identities and do-not-contact.

Every change goes through `identities.services` (rules, audit).  Secrets are
never shown: credentials appear only as type, dates and the fingerprint of the
key that encrypted them.
"""

from django import forms
from django.contrib import admin, messages

from rediska import crypto

from . import services
from .models import VOICE_KEYS, DoNotContact, Identity, Provider, ProviderCredential


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ("provider_id", "display_name", "enabled", "created_at")
    readonly_fields = ("provider_id", "display_name", "created_at")

    def has_add_permission(self, request):  # providers come from the code's registry
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CredentialInline(admin.TabularInline):
    model = ProviderCredential
    fields = ("credential_type", "created_at", "rotated_at", "key_fingerprint")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="encrypted under key")
    def key_fingerprint(self, obj):
        try:
            return crypto.fingerprint_of(obj.secret_encrypted)
        except crypto.CredentialsKeyError:
            return "unreadable"

    def has_add_permission(self, request, obj=None):
        return False


class _JSONField(forms.JSONField):
    """Django's JSONField lets JSON nested too deep (RecursionError) escape as a 500."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except RecursionError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


class IdentityAdminForm(forms.ModelForm):
    class Meta:
        model = Identity
        fields = ("display_name", "voice_config_json")
        field_classes = {"voice_config_json": _JSONField}

    def clean_voice_config_json(self):
        voice = self.cleaned_data["voice_config_json"]
        if voice in (None, ""):
            return {}
        if not isinstance(voice, dict) or set(voice) - set(VOICE_KEYS) or \
                not all(isinstance(v, str) for v in voice.values()):
            raise forms.ValidationError(f"An object of texts with keys among: {', '.join(VOICE_KEYS)}.")
        return voice


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    form = IdentityAdminForm
    list_display = ("display_name", "provider", "external_username", "is_default", "is_active", "needs_reconnect")
    list_filter = ("provider", "is_active", "is_default")
    search_fields = ("display_name", "external_username")
    list_select_related = ("provider",)
    readonly_fields = ("provider", "external_username", "external_user_id", "is_default", "is_active",
                       "needs_reconnect_at", "last_auth_error", "created_at", "updated_at")
    fields = ("display_name", "voice_config_json", *readonly_fields)
    inlines = [CredentialInline]
    actions = ["make_default", "deactivate"]

    @admin.display(boolean=True, description="needs reconnecting")
    def needs_reconnect(self, obj):
        return obj.needs_reconnect

    def has_add_permission(self, request):  # identities are connected through OAuth or identity_add
        return False

    def has_delete_permission(self, request, obj=None):  # conversations keep their identity forever
        return False

    def save_model(self, request, obj, form, change):
        voice = form.cleaned_data["voice_config_json"] or {}
        services.update_identity(obj, display_name=form.cleaned_data["display_name"],
                                 voice={key: voice.get(key, "") for key in VOICE_KEYS})

    @admin.action(description="Make the selected identity the default of its provider")
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one identity.", messages.ERROR)
            return
        try:
            services.set_default_identity(queryset.get())
        except services.IdentityError as exc:
            self.message_user(request, exc.user_message, messages.ERROR)

    @admin.action(description="Deactivate the selected identities")
    def deactivate(self, request, queryset):
        for identity in queryset:
            services.deactivate_identity(identity)


class DoNotContactAdminForm(forms.ModelForm):
    class Meta:
        model = DoNotContact
        fields = ("provider", "external_username", "reason")

    def clean_external_username(self):
        try:
            return services.clean_username(self.cleaned_data["external_username"])
        except services.IdentityError as exc:
            raise forms.ValidationError(exc.user_message) from None

    def validate_unique(self):  # the service keeps one entry per person, whatever the case
        pass


@admin.register(DoNotContact)
class DoNotContactAdmin(admin.ModelAdmin):
    form = DoNotContactAdminForm
    list_display = ("external_username", "provider", "reason", "created_at")
    list_filter = ("provider",)
    search_fields = ("external_username", "reason")
    list_select_related = ("provider",)

    def get_readonly_fields(self, request, obj=None):
        return ("provider", "external_username", "created_at") if obj else ("created_at",)

    def save_model(self, request, obj, form, change):
        obj.pk = services.add_do_not_contact(obj.provider_id, obj.external_username, obj.reason).pk

    def delete_model(self, request, obj):
        services.remove_do_not_contact(obj.provider_id, obj.external_username)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            services.remove_do_not_contact(entry.provider_id, entry.external_username)
