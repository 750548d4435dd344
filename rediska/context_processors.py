from django.conf import settings


def rediska(request):
    return {
        "inference_configured": bool(settings.INFERENCE_URL),
        "embeddings_configured": bool(settings.EMBEDDINGS_URL),
    }
