from django import forms


class TestNotificationForm(forms.Form):
    """The test button: nothing to fill in, but a POST of our own form (CSRF) only."""

    confirm = forms.BooleanField(initial=True, widget=forms.HiddenInput)
