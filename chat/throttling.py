"""How often one user may ask: one budget for the web chat, the REST API and the OpenAI endpoint."""

import math

from rest_framework.throttling import UserRateThrottle


class ChatThrottle(UserRateThrottle):
    """Questions per user (rate "chat"), counted in the configured cache (Redis)."""

    scope = "chat"

    def seconds_to_wait(self, request) -> int:
        """0 while the user is under the limit (the question is counted), else the seconds to wait."""
        if self.allow_request(request, None):
            return 0
        return max(1, math.ceil(self.wait() or 60))
