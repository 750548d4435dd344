from django import forms

from rediska.models import Job

from . import services
from .targets import NAME_RE


class BackupNowForm(forms.Form):
    kind = forms.ChoiceField(choices=[(services.FULL, "Database and attachments"),
                                      (services.ATTACHMENTS_ONLY, "Attachments only")],
                             initial=services.FULL)


class RestoreTestForm(forms.Form):
    backup = forms.RegexField(regex=NAME_RE, required=False, max_length=32,
                              error_messages={"invalid": "That is not a backup name."})


class AcknowledgeForm(forms.Form):
    job = forms.ModelChoiceField(
        queryset=Job.objects.filter(job_type__in=services.MAINTENANCE_TASKS, status=Job.Status.FAILED),
        error_messages={"invalid_choice": "There is no such failed backup or restore test."},
    )
    next = forms.CharField(required=False, max_length=2000)
