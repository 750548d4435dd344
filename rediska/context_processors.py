from django.conf import settings
from django.template.loader import render_to_string
from django.utils.functional import SimpleLazyObject


def _alerts(request) -> list[dict]:
    """A failed backup or restore test, shown on every page until acknowledged."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return []
    from rediska.backups.services import unacknowledged_failures

    failures = unacknowledged_failures()
    if not failures:
        return []
    html = render_to_string("backups/_alert.html", {"job": failures[0], "earlier": len(failures) - 1},
                            request=request)
    return [{"level": "error", "html": html}]


def rediska(request):
    return {
        "inference_configured": bool(settings.INFERENCE_URL),
        "embeddings_configured": bool(settings.EMBEDDINGS_URL),
        # Lazy: the query runs only when a full page renders the alerts block.
        "alerts": SimpleLazyObject(lambda: _alerts(request)),
    }
