"""Who is calling: ``None`` with auth off, else the user of a valid bearer token."""

from __future__ import annotations

from flask import g, request

from api.errors import Unauthorized
from api.extension import calc

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
    found = calc().token_lookup(token.strip())
    if found is None:
        raise Unauthorized("the token is not valid", headers={"WWW-Authenticate": "Bearer"})
    if found.stamp_due is not None:
        calc().token_stamper.note(found.stamp_due)  # written by a background thread
    g.owner = found.user_id


def current_owner() -> str | None:
    return g.get("owner")
