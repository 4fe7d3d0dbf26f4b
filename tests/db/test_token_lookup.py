"""The token lookup every authenticated request makes (a pooled driver connection, not an ORM
session): the same answers as the tables hold, on both databases, and it outlives a dropped
connection."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from db.models import ApiToken, utcnow
from db.session import make_engine, session_scope
from db.tokens import LAST_USED_RESOLUTION, TokenLookup, create_token, revoke_token, stamp_used


def test_valid_revoked_unknown_and_stamp_due(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            kept, kept_token = create_token("alice", session=session)
            gone, gone_token = create_token("alice", session=session)
            kept_id, gone_id = kept.id, gone.id
        with session_scope(engine) as session:
            revoke_token(gone_id, session=session)
        lookup = TokenLookup(engine)

        first = lookup(kept_token)
        assert first is not None
        assert (first.user_id, first.stamp_due) == ("alice", kept_id)  # never used: due
        assert lookup(gone_token) is None
        assert lookup(kept_token + "x") is None
        assert lookup("\ud800") is None  # a lone surrogate is a token like any other

        with session_scope(engine) as session:
            stamp_used([kept_id], session=session)
        just_used = lookup(kept_token)
        assert just_used is not None and just_used.stamp_due is None  # read back as a datetime
        with session_scope(engine) as session:
            long_ago = utcnow() - LAST_USED_RESOLUTION - timedelta(minutes=1)
            session.execute(
                update(ApiToken).where(ApiToken.id == kept_id).values(last_used_at=long_ago)
            )
        stale = lookup(kept_token)
        assert stale is not None and stale.stamp_due == kept_id
    finally:
        engine.dispose()


def test_a_connection_the_server_dropped_is_replaced(
    postgres_url: str, drop_pooled_connection
) -> None:
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session:
            _, token = create_token("bob", session=session)
        lookup = TokenLookup(engine)
        assert lookup(token) is not None  # its connection now waits in the pool
        drop_pooled_connection(engine)
        found = lookup(token)
        assert found is not None and found.user_id == "bob"
    finally:
        engine.dispose()
