from __future__ import annotations

import re
import uuid

from .logging import request_id_var

_VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class RequestIdMiddleware:
    """Tags every log line of a request with an id (kept from nginx if sane)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class SecurityHeadersMiddleware:
    """The spec §4 headers Django has no setting for, so they hold without nginx.

    (nosniff, X-Frame-Options and Referrer-Policy come from Django's own
    SecurityMiddleware and XFrameOptionsMiddleware, configured in settings.)
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; base-uri 'self'",
        )
        if request.is_secure():
            response.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
