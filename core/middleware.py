"""A backing service that is down (the database, the task queue) answers 503 with Retry-After
and a plain reason, as JSON on the APIs and as a page on the site, instead of a 500 traceback.

Django drops a connection that failed (CONN_HEALTH_CHECKS checks a kept one before each
request), so the first request after the database is back succeeds with no manual step.
"""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

from .queue import QueueUnavailable

logger = logging.getLogger(__name__)
DATABASE_DOWN = "Twinsite's database cannot be reached right now; please try again shortly."


def unavailable_response(request, message: str, retry_after: int) -> HttpResponse:
    """503 in the caller's format: the REST API's {"detail"}, OpenAI's {"error"}, or a page."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=503)
    elif request.path.startswith("/v1/"):
        response = JsonResponse({"error": {"message": message, "type": "service_unavailable"}}, status=503)
    else:  # rendered without the request: its context (the user, messages) would query the database
        page = render_to_string("503.html", {"message": message, "retry_after": retry_after})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(retry_after)
    return response


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, QueueUnavailable):
            return unavailable_response(request, str(exception), exception.retry_after)
        if isinstance(exception, OperationalError | InterfaceError):
            logger.error("database unavailable during %s %s: %s", request.method, request.path, exception)
            return unavailable_response(request, DATABASE_DOWN, settings.TWIN_UNAVAILABLE_RETRY_AFTER_SECONDS)
        return None
