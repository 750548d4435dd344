"""Search backends: `get_backend()` picks Elasticsearch when `ELASTIC_URL` is set, else the embedded index."""

from __future__ import annotations

from django.conf import settings

from .base import SearchBackend

BACKENDS = ("embedded", "elastic")


def get_backend(name: str | None = None) -> SearchBackend:
    name = name or ("elastic" if settings.ELASTIC_URL else "embedded")
    if name == "elastic":
        if not settings.ELASTIC_URL:
            raise ValueError("ELASTIC_URL is not set, so the elastic backend can't be used.")
        from .elastic import ElasticBackend  # only imported when configured

        return ElasticBackend(settings.ELASTIC_URL, settings.ELASTIC_INDEX)
    if name == "embedded":
        from .embedded import EmbeddedBackend

        return EmbeddedBackend(settings.SEARCH_INDEX_PATH)
    raise ValueError(f"Unknown search backend {name!r}; choose one of: {', '.join(BACKENDS)}.")
