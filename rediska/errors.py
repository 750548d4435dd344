"""Error pages: HTML for people, JSON for API clients, never a stack trace."""

from django.http import JsonResponse
from django.shortcuts import render


def _respond(request, status: int, title: str, detail: str):
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"error": title, "detail": detail}, status=status)
    return render(request, "error.html", {"status": status, "title": title, "detail": detail}, status=status)


def bad_request(request, exception=None):
    return _respond(request, 400, "Bad request", "The request could not be understood (it may be too large or malformed).")


def permission_denied(request, exception=None):
    return _respond(request, 403, "Forbidden", "You are not allowed to do that.")


def page_not_found(request, exception=None):
    return _respond(request, 404, "Not found", "There is nothing at this address.")


def server_error(request):
    return _respond(request, 500, "Something went wrong", "The error was logged. Nothing was half-saved.")
