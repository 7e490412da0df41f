"""Who is asking, and how often: one rule for the client's address, shared by the API
throttles, the login lockout (django-axes) and the signup limit.

The address is DRF's: REMOTE_ADDR, or the entry that the last of NUM_PROXIES trusted
proxies appended to X-Forwarded-For. With no proxy (NUM_PROXIES = 0) the header is
ignored, so a client cannot reset a limit by sending a header of its own.
"""

import math

from axes.helpers import get_cool_off
from django.http import JsonResponse
from django.shortcuts import render
from rest_framework.throttling import AnonRateThrottle, BaseThrottle

API_PREFIXES = ("/api/", "/v1/")


def client_ip(request) -> str:
    """The caller's address, as every per-address limit sees it (AXES_CLIENT_IP_CALLABLE)."""
    return BaseThrottle().get_ident(request)


def _retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def lockout_response(request, original_response=None, credentials=None):
    """Axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): JSON for the API, a page otherwise."""
    seconds = get_cool_off(request).total_seconds()
    minutes = max(1, math.ceil(seconds / 60))
    message = f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
    if request.path.startswith(API_PREFIXES):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "accounts/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = _retry_after(seconds)
    return response


class TokenThrottle(AnonRateThrottle):
    """The token endpoint, per client address: the caller stays anonymous until the password checks out."""

    scope = "token"


class SignupThrottle(AnonRateThrottle):
    """Signup attempts per client address, so one client cannot mint accounts in bulk."""

    scope = "signup"

    def refusal(self, request):
        """None while the caller is under the limit (the attempt is counted), else a 429 page."""
        if self.allow_request(request, None):
            return None
        wait = self.wait() or 60
        response = render(
            request,
            "accounts/signup_throttled.html",
            {"minutes": max(1, math.ceil(wait / 60))},
            status=429,
        )
        response["Retry-After"] = _retry_after(wait)
        return response
