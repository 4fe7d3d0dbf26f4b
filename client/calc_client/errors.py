"""Typed exceptions, one per error ``type`` of the service's envelope (API.md "Errors")."""

from __future__ import annotations

from typing import Any


class CalcError(Exception):
    """An error answer of the service: its HTTP status and its envelope's fields."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str = "CalcError",
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.details: dict[str, Any] = details or {}
        self.retry_after = retry_after

    @property
    def line(self) -> int | None:
        """The script's line for a syntax or security error (None where not given)."""
        line = self.details.get("line")
        return line if isinstance(line, int) else None

    @property
    def column(self) -> int | None:
        column = self.details.get("column")
        return column if isinstance(column, int) else None

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.type}{where}: {self.message}"


class ValidationError(CalcError):
    """400: the body or query parameters are malformed (``details`` names each field)."""


class ScriptSyntaxError(CalcError):
    """400 ``SyntaxError``: the code does not parse (``line``, ``column``)."""


class SecurityError(CalcError):
    """400 ``SecurityError``: the code breaks the sandbox policy."""


class ScriptNameError(CalcError):
    """400 ``NameError``: the script reads a name it never assigns."""


class Unauthorized(CalcError):
    """401: the token is missing or not valid."""


class NotFound(CalcError):
    """404: no such script or job for this caller (or it expired)."""


class Conflict(CalcError):
    """409: a name already used, an idempotency key reused with another body, a job not finished."""


class PayloadTooLarge(CalcError):
    """413: the body is over the service's limit."""


class UnsupportedMediaType(CalcError):
    """415: the body was not JSON."""


class RateLimited(CalcError):
    """429: too many requests; ``retry_after`` seconds until the next try."""


class ServiceUnavailable(CalcError):
    """503: Redis or the database cannot be reached; nothing was half-done."""


class JobFailed(CalcError):
    """A job ended ``failed`` (a job-level error, the job's ``error``); ``job`` is the job."""

    def __init__(self, message: str, *, type: str, job: Any) -> None:
        super().__init__(message, type=type)
        self.job = job


BY_TYPE: dict[str, type[CalcError]] = {
    "ValidationError": ValidationError,
    "SyntaxError": ScriptSyntaxError,
    "SecurityError": SecurityError,
    "NameError": ScriptNameError,
    "Unauthorized": Unauthorized,
    "NotFound": NotFound,
    "Conflict": Conflict,
    "PayloadTooLarge": PayloadTooLarge,
    "UnsupportedMediaType": UnsupportedMediaType,
    "RateLimited": RateLimited,
    "ServiceUnavailable": ServiceUnavailable,
}
BY_STATUS: dict[int, type[CalcError]] = {
    400: ValidationError,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for(
    status: int, envelope: Any, retry_after: float | None, fallback_message: str
) -> CalcError:
    """The exception for an error answer: by the envelope's ``type``, else by status."""
    body = envelope.get("error") if isinstance(envelope, dict) else None
    if not isinstance(body, dict):
        body = {}
    kind = str(body.get("type") or f"HTTP{status}")
    message = str(body.get("message") or fallback_message)
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    cls = BY_TYPE.get(kind) or BY_STATUS.get(status, CalcError)
    return cls(message, status=status, type=kind, details=details, retry_after=retry_after)
