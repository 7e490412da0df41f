"""What the safe fetch raises: a refusal or failure worded for the user who gave the URL."""


class FetchError(Exception):
    """A refusal or failure, worded for the user who gave the URL."""


class HTTPStatusError(FetchError):
    """The server answered with an error status; crawls decide what it means (gone, back off)."""

    def __init__(self, message, status: int, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after
