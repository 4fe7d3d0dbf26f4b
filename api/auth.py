"""Who is calling: ``None`` with auth off, else the user of a valid bearer token."""

from __future__ import annotations

import logging

from flask import g, request
from sqlalchemy.exc import OperationalError

from api.errors import Unauthorized
from api.extension import calc, db_session
from db.tokens import find_token, stamp_used

log = logging.getLogger(__name__)

# The page and its files carry no data: its calls to the API send the token.
PUBLIC_ENDPOINTS = frozenset({"health.health", "openapi.openapi", "page.index", "page.static"})


def authenticate() -> None:
    """Run before every request; with ``CALC_AUTH=required`` a valid token is needed."""
    g.owner = None
    if calc().settings.auth == "off" or request.endpoint in PUBLIC_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    session = db_session()
    found = find_token(token.strip(), session=session)
    if found is None:
        raise Unauthorized("the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    if found.stamp_due:
        try:
            stamp_used(found.token_id, session=session)
            session.commit()
        except OperationalError:  # best effort (a locked database): stamped at a later use
            session.rollback()
            log.info("token last_used_at not stamped", extra={"user": found.user_id})
    g.owner = found.user_id


def current_owner() -> str | None:
    return g.get("owner")
