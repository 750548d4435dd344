from django import template

from leads.services import TRANSITIONS

register = template.Library()


@register.filter
def moves(lead) -> set[str]:
    """The statuses this lead may move to (the triage buttons shown)."""
    return TRANSITIONS.get(lead.status, set())


@register.filter
def on_dnc(account, dnc: set) -> bool:
    """Whether the account is in the view's do-not-contact set of (provider_id, lower-cased name)."""
    return bool(account) and (account.provider_id, account.external_username.lower()) in dnc
