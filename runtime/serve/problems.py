"""The one error shape of every response: ``{"error": {"type", "message"}}`` with its status."""

from __future__ import annotations


class RequestError(Exception):
    """A request that ends in an error response (never a traceback).

    Args:
        status: the HTTP status (400, 413, 422, 503, 504...).
        kind: the error's type name, e.g. ``VideoDecodeError`` or ``UploadTooLarge``.
        message: one line saying what, which upload and why.
        retry_after: seconds for a ``Retry-After`` header (503).
    """

    def __init__(self, status: int, kind: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.retry_after = retry_after

    def body(self) -> dict:
        """The JSON body."""
        return error_body(self.kind, self.message)

    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def error_body(kind: str, message: str) -> dict:
    """``{"error": {"type": kind, "message": message}}``."""
    return {"error": {"type": kind, "message": message}}
