"""API tokens, stored as SHA-256 hashes: a leaked table reveals no usable token."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
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


@dataclass(frozen=True, slots=True)
class TokenUser:
    """Whose a valid token is, and the token's id when its ``last_used_at`` is due a stamp."""

    user_id: str
    stamp_due: int | None


_TABLE = ApiToken.__table__
_COLUMNS = _TABLE.c
# Built once: building the statement cost every request more than running it.
_TOKEN_LOOKUP = select(
    _COLUMNS.id, _COLUMNS.user_id, _COLUMNS.revoked_at, _COLUMNS.last_used_at
).where(_COLUMNS.token_hash == bindparam("token_hash"))


def user_for_token(token: str, *, session: Session | Connection) -> TokenUser | None:
    """The user of a valid, unrevoked token, else None. Reads only: the caller stamps
    ``last_used_at`` (``stamp_used``) when due, at most every few minutes, and off the
    request's path: a write per request would queue requests on the database's write lock.
    (Every request asks this: a plain connection serves it without an ORM session.)"""
    row = session.execute(_TOKEN_LOOKUP, {"token_hash": hash_token(token)}).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    due = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION
    return TokenUser(row.user_id, row.id if due else None)


def stamp_used(token_ids: Collection[int], *, session: Session) -> None:
    """Stamp ``last_used_at`` of these tokens now, in one statement."""
    session.execute(
        update(_TABLE).where(_COLUMNS.id.in_(list(token_ids))).values(last_used_at=utcnow())
    )


def list_tokens(*, session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke_token(token_id: int, *, session: Session) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
