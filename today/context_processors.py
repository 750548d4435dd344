from django.utils.functional import SimpleLazyObject


def nav(request):
    """The unread count beside Inbox in the navigation (lazy: counted only when a full page shows it)."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    from inbox.services.state import unread_count

    return {"nav_unread": SimpleLazyObject(unread_count)}
