"""API tokens, stored as SHA-256 hashes: a leaked table reveals no usable token."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ApiToken, utcnow

TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    user_id: str, *, session: Session, name: str | None = None
) -> tuple[ApiToken, str]:
    """A new random token for ``user_id``; the plain token is returned once and never stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = ApiToken(user_id=user_id, name=name, token_hash=hash_token(token))
    session.add(row)
    session.flush()
    return row, token


LAST_USED_RESOLUTION = timedelta(minutes=5)


def user_for_token(token: str, *, session: Session) -> str | None:
    """The user of a valid, unrevoked token, else None.

    ``last_used_at`` is stamped at most every few minutes: a write on every request would
    serialize all requests on the database's write lock.
    """
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row.user_id


def list_tokens(*, session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke_token(token_id: int, *, session: Session) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
