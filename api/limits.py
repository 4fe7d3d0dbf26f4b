"""Request rate limits (flask-limiter, counted in Redis so every API process shares them)."""

from __future__ import annotations

import hashlib

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from settings import Settings


def caller_key() -> str:
    """The token's user when a bearer token is sent (hashed: never the token), else the address.

    This runs before authentication, so it keys by the token itself; an invalid token
    is refused with 401 by ``authenticate`` anyway.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode("utf-8", "replace")).hexdigest()[:24]
    return "addr:" + (get_remote_address() or "unknown")


def init_limiter(app: Flask, settings: Settings) -> Limiter:
    limiter = Limiter(
        caller_key,
        app=app,
        default_limits=[settings.rate_limit_default],
        storage_uri=settings.redis_url,
        # The app's own pool (its 1 s socket timeouts): one set of connections a process,
        # opened before the first request by api/warmup.py.
        storage_options={"connection_pool": app.extensions["calc"].redis.connection_pool},
        strategy="fixed-window",  # one round trip a check: the submit path is hot
        # No X-RateLimit headers: they cost every request another Redis round trip. A 429
        # still says when to come back (Retry-After, from the limit's window: api/errors.py).
        headers_enabled=False,
        # With Redis down the limiter lets requests through; the routes answer 503 themselves.
        swallow_errors=True,
        key_prefix="calc-limits",
    )
    # The limit is checked inside the decorator's wrapper, so the wrapper must be the view.
    view = app.view_functions["execute.execute"]
    app.view_functions["execute.execute"] = limiter.limit(settings.rate_limit_execute)(view)
    for endpoint in ("health.health", "openapi.openapi", "metrics.metrics"):
        limiter.exempt(app.view_functions[endpoint])
    return limiter
