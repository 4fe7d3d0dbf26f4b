"""Request rate limits (flask-limiter, counted in Redis so every API process shares them).

Every route but ``POST /execute`` has the default limit, checked by flask-limiter's own
hook. The submit's limit is counted by the same limiter's backend (``Limiter.limiter``: the
same Redis storage, strategy and key prefix) from a hook of ours: through flask-limiter's
decorator, resolving which limits apply (exemptions, meta limits, scopes) took a sixth of a
submit's instructions (``bench.submit_instructions``: 3.82 M -> 3.18 M), and a submit burst
queues behind exactly that CPU.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import redis
from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse

from api.errors import RateLimited
from settings import Settings

EXECUTE = "execute.execute"
KEY_PREFIX = "calc-limits"


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
        key_prefix=KEY_PREFIX,
    )
    for endpoint in ("health.health", "openapi.openapi", "metrics.metrics"):
        limiter.exempt(app.view_functions[endpoint])
    limiter.request_filter(lambda: request.endpoint == EXECUTE)  # its own limit, below
    app.before_request(execute_limit_check(limiter, settings.rate_limit_execute))
    return limiter


def execute_limit_check(limiter: Limiter, rate: str) -> Callable[[], None]:
    """A ``before_request`` hook: ``rate`` per caller on ``POST /execute``, else a 429 whose
    Retry-After is the limit's window (the count is reset by then)."""
    limit = parse(rate)
    retry_after = str(max(1, limit.get_expiry()))

    def check_execute_limit() -> None:
        if request.endpoint != EXECUTE or not limiter.enabled:
            return
        try:
            allowed = limiter.limiter.hit(limit, KEY_PREFIX, caller_key(), EXECUTE)
        except redis.RedisError:  # let it through, as swallow_errors does: the route
            return  # answers 503 itself (and logs it) when it needs Redis
        if not allowed:
            raise RateLimited(
                f"too many submits: at most {limit}",
                {"rate": str(limit)},
                headers={"Retry-After": retry_after},
            )

    return check_execute_limit
