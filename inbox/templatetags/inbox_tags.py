"""Template helpers of the inbox pages."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def when(value: datetime | None):
    """`<time>` with the machine-readable instant and "YYYY-MM-DD HH:MM" in the site's time zone.

    The same as two `date` filters, at a fraction of their cost: a 500-message
    conversation renders it 500 times.
    """
    if not isinstance(value, datetime):
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html('<time datetime="{}">{}</time>', local.isoformat(), local.strftime("%Y-%m-%d %H:%M"))
