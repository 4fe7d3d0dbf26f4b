"""Who is calling: ``None`` with auth off, else the user of a valid bearer token."""

from __future__ import annotations

import logging

from flask import Response, g, request
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from api.errors import Unauthorized
from api.extension import calc, db_session
from db.session import session_scope
from db.tokens import stamp_used, user_for_token

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"health.health", "openapi.openapi"})


def authenticate() -> None:
    """Run before every request; with ``CALC_AUTH=required`` a valid token is needed."""
    g.owner = None
    if calc().settings.auth != "required" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    found = user_for_token(token.strip(), session=db_session())
    if found is None:
        raise Unauthorized("the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    g.owner = found.user_id
    g.token_stamp_due = found.stamp_due


def stamp_token_after_response(response: Response) -> Response:
    """Stamp the token's ``last_used_at`` once the answer is sent (``call_on_close``): the
    write waits for the database's write lock, which the workers' audit rows also take, and
    no caller should wait for that."""
    token_id = g.pop("token_stamp_due", None)
    if token_id is not None:
        engine = calc().engine
        response.call_on_close(lambda: _stamp(engine, token_id))
    return response


def _stamp(engine: Engine, token_id: int) -> None:
    try:
        with session_scope(engine) as session:
            stamp_used(token_id, session=session)
    except SQLAlchemyError:
        log.warning("token last_used_at not stamped", extra={"token_id": token_id})


def current_owner() -> str | None:
    return g.get("owner")
