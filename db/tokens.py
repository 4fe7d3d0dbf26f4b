"""API tokens, stored as SHA-256 hashes: a leaked table reveals no usable token."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, or_, select, update
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


LAST_USED_RESOLUTION = timedelta(minutes=5)  # last_used_at is kept to within this

_COLUMNS = ApiToken.__table__.c
_TOKEN_LOOKUP = select(
    _COLUMNS.id, _COLUMNS.user_id, _COLUMNS.revoked_at, _COLUMNS.last_used_at
).where(_COLUMNS.token_hash == bindparam("token_hash"))


@dataclass(frozen=True, slots=True)
class TokenUser:
    """Whose a valid token is; ``stamp_due`` when its ``last_used_at`` is older than
    ``LAST_USED_RESOLUTION`` (a token in use is stamped every few minutes, not every request:
    a write queues on SQLite's one write lock)."""

    token_id: int
    user_id: str
    stamp_due: bool


def find_token(token: str, *, session: Session) -> TokenUser | None:
    """The user of a valid, unrevoked token, else None."""
    row = session.execute(_TOKEN_LOOKUP, {"token_hash": hash_token(token)}).first()
    if row is None or row.revoked_at is not None:
        return None
    due = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION
    return TokenUser(row.id, row.user_id, due)


def stamp_used(token_id: int, *, session: Session) -> bool:
    """Stamp ``last_used_at`` unless another request just did (one conditional ``UPDATE``)."""
    now = utcnow()
    stale = or_(_COLUMNS.last_used_at.is_(None), _COLUMNS.last_used_at < now - LAST_USED_RESOLUTION)
    stamped = session.execute(
        update(ApiToken.__table__).where(_COLUMNS.id == token_id, stale).values(last_used_at=now)
    )
    return bool(stamped.rowcount)


def list_tokens(*, session: Session) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).order_by(ApiToken.id)).all()


def revoke_token(token_id: int, *, session: Session) -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
