"""The one error envelope of API.md, made here and nowhere else.

Every non-2xx answer, whatever raised it (our checks, Werkzeug, Redis or the
database being down, a bug), is ``{"error": {"type", "message", "details"}}``.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, request
from flask_limiter.errors import RateLimitExceeded
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from sandbox.errors import ScriptRejected

log = logging.getLogger(__name__)
SYMBOLS_MAX = 5000  # API.md's limit, as the schema states it


# API.md's error table, and the two types it does not name that the envelope still needs
# (README, The API beyond API.md): 405 with an Allow header, and 500 for a bug of ours.
TYPES = {
    400: "ValidationError",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    429: "RateLimited",
    500: "InternalError",
    503: "ServiceUnavailable",
}
OTHER_HTTP = "HTTPError"  # what Werkzeug answers that none of ours is (README: 412, 416)


class ApiError(Exception):
    """An answer of the error table: raise a subclass; its status names its type (``TYPES``)."""

    status = 500

    def __init__(
        self,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    @property
    def type(self) -> str:
        return TYPES[self.status]


class ValidationFailed(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class RateLimited(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503


def rate_limited(message: str, limit: str, retry_after: int) -> RateLimited:
    """Every 429 has these ``details``, whichever layer refuses: the limit and when to retry
    (``schemas.RateLimitDetails``)."""
    retry_after = max(1, int(retry_after))
    return RateLimited(
        message,
        {"limit": limit, "retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def payload_too_large(field: str, limit_bytes: int) -> PayloadTooLarge:
    """Every 413 has these ``details``, whichever layer refuses: the one field that is too
    large (``body`` or ``code``) and its limit, as a 400 names its fields."""
    return PayloadTooLarge(
        f"{field} is over the limit of {limit_bytes} bytes", {field: f"at most {limit_bytes} bytes"}
    )


def envelope(
    status: int,
    kind: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one error body of API.md, with its status and headers."""
    response = jsonify({"error": {"type": kind, "message": message, "details": details or {}}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def pydantic_details(exc: PydanticValidationError) -> dict[str, str]:
    """One message per field, named by its dotted path (``symbols.3``)."""
    details: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = ".".join(str(p) for p in err["loc"]) or "body"
        details.setdefault(path, _friendly(err))
    return details


def _friendly(err: dict[str, Any]) -> str:
    kind, loc = err.get("type", ""), err.get("loc") or ()
    if kind in ("too_short", "too_long") and loc and loc[-1] == "symbols":
        return f"must hold 1 to {SYMBOLS_MAX} items"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind == "missing":
        return "is required"
    message = str(err.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def register_error_handlers(app: Flask) -> None:
    """Every error, ours or not, answered in the envelope (STYLE.md, convention 6)."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return envelope(exc.status, exc.type, exc.message, exc.details, exc.headers)

    @app.errorhandler(ScriptRejected)
    def _rejected(exc: ScriptRejected):
        return envelope(400, exc.error_type, exc.message, exc.details())

    @app.errorhandler(PydanticValidationError)
    def _invalid(exc: PydanticValidationError):
        details = pydantic_details(exc)
        first = next(iter(details.items()), ("body", "is invalid"))
        return envelope(400, "ValidationError", f"{first[0]}: {first[1]}", details)

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded):
        # Retry-After: the window's length, by when the count is reset.
        limit = str(exc.limit.limit)
        refused = rate_limited(
            f"too many requests: at most {limit}", limit, exc.limit.limit.get_expiry()
        )
        return _api_error(refused)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        return _api_error(payload_too_large("body", request.max_content_length or 0))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        valid = getattr(exc, "valid_methods", None)
        headers = {"Allow": ", ".join(valid)} if valid else None
        return envelope(status, TYPES.get(status, OTHER_HTTP), _http_message(exc), None, headers)

    @app.errorhandler(redis.OutOfMemoryError)
    def _redis_full(exc: redis.OutOfMemoryError):
        # At its maxmemory with ``noeviction`` (README, Reliability notes), Redis refuses
        # writes: nothing is queued, and reads go on. Not "cannot be reached": it is full.
        log.error("redis is full", extra={"path": request.path})
        message = "the job store (Redis) is full: no job can be queued now"
        return _unavailable(message, {"redis": "full"}, retry_after=30)

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc: redis.RedisError):
        log.warning("redis unavailable", extra={"path": request.path, "error": type(exc).__name__})
        return _unavailable("the job store (Redis) cannot be reached", {"redis": "unavailable"})

    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeout)
    def _db_down(exc: Exception):
        log.warning(
            "database unavailable", extra={"path": request.path, "error": type(exc).__name__}
        )
        return _unavailable("the database cannot be reached", {"database": "unavailable"})

    @app.errorhandler(DBAPIError)
    def _db_error(exc: DBAPIError):
        if exc.connection_invalidated:
            return _db_down(exc)
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Still the envelope, never HTML and never our traceback; the log has the details.
        log.exception("unexpected error", extra={"path": request.path, "job_id": g.get("job_id")})
        return envelope(500, TYPES[500], "an unexpected error occurred; it has been logged")

    @app.after_request
    def _only_envelopes(response: Response) -> Response:
        """API.md: every non-2xx answer has the one shape. Werkzeug makes a few answers that
        no handler sees (a static file's 412 for a failed ``If-Match``): enveloped here."""
        if response.status_code < 400 or response.is_json:
            return response
        response.close()  # (a file's answer holds the file open)
        status = response.status_code
        message = HTTP_STATUS_CODES.get(status, "error").lower()
        return envelope(status, TYPES.get(status, OTHER_HTTP), message)


def _unavailable(message: str, details: dict[str, str], *, retry_after: int = 5) -> Response:
    """503: a service we need cannot be reached (or is full); nothing was half-done."""
    return envelope(503, TYPES[503], message, details, {"Retry-After": str(retry_after)})


def _http_message(exc: HTTPException) -> str:
    if exc.code == 404:
        return "no such route"
    if exc.code == 405:
        return f"method {request.method} is not allowed here"
    return (exc.description or exc.name or "error").split("\n")[0][:200]
