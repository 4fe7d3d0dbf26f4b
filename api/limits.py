"""Request rate limits with flask-limiter, counted in Redis so every API process shares them.

Every route has the default limit (``CALC_RATE_LIMIT_DEFAULT``) but the probes, per caller:
the token's user, else the address. With auth required, ``POST /execute`` has its own
(``CALC_RATE_LIMIT_EXECUTE``, 30 a second by default) per user: it keeps one user's loop from
crowding out the others. With auth off there are no users to keep apart (a frontend relays
every analyst from one address), so by default submits have the default limit only, and
overload is the service's backlog limit's to refuse (``workers.backlog``); a
``CALC_RATE_LIMIT_EXECUTE`` set explicitly applies there too, per address. With Redis down
the limiter lets requests through and the routes answer 503
themselves. A breach is a 429 in the envelope with ``Retry-After`` (``api/errors.py``).
"""

from __future__ import annotations

import hashlib

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from settings import Settings

KEY_PREFIX = "calc-limits"
EXEMPT = ("health.health", "openapi.openapi", "metrics.metrics")
EXECUTE = "execute.execute"


def caller_key() -> str:
    """The token's user when a bearer token is sent (hashed: never the token), else the address.

    This runs before the view, so it keys by the token itself; an invalid token is refused
    with 401 by ``authenticate`` before any limit is counted.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "token:" + hashlib.sha256(token.strip().encode("utf-8", "replace")).hexdigest()[:24]
    return "addr:" + (get_remote_address() or "unknown")


def init_limiter(app: Flask, settings: Settings) -> Limiter:
    """The app's limiter (one per app: each app has its own Redis), its routes' limits set."""
    limiter = Limiter(
        caller_key,
        app=app,
        default_limits=[settings.rate_limit_default],
        storage_uri=settings.redis_url,
        # The app's own pool (its 1 s socket timeouts): one set of connections a process,
        # opened before the first request by api/warmup.py.
        storage_options={"connection_pool": app.extensions["calc"].redis.connection_pool},
        strategy="fixed-window",
        headers_enabled=False,  # a 429 says when to come back: Retry-After
        swallow_errors=True,
        key_prefix=KEY_PREFIX,
    )
    for endpoint in EXEMPT:
        limiter.exempt(app.view_functions[endpoint])
    if settings.execute_rate_limit is not None:
        app.view_functions[EXECUTE] = limiter.limit(settings.execute_rate_limit)(
            app.view_functions[EXECUTE]
        )
    return limiter
