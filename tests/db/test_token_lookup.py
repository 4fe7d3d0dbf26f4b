"""The token lookup every authenticated request makes: the same answers as the table holds,
on both databases; ``last_used_at`` stamped by one conditional UPDATE, at most every few
minutes; and it outlives a dropped connection."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from db.models import ApiToken, utcnow
from db.session import make_engine, session_scope
from db.tokens import LAST_USED_RESOLUTION, create_token, find_token, revoke_token, stamp_used


def test_valid_revoked_unknown_and_stamp_due(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            kept, kept_token = create_token("alice", session=session)
            gone, gone_token = create_token("alice", session=session)
            kept_id, gone_id = kept.id, gone.id
        with session_scope(engine) as session:
            revoke_token(gone_id, session=session)
        with session_scope(engine) as session:
            first = find_token(kept_token, session=session)
            assert first is not None
            assert (first.token_id, first.user_id, first.stamp_due) == (kept_id, "alice", True)
            assert find_token(gone_token, session=session) is None
            assert find_token(kept_token + "x", session=session) is None
            assert find_token("\ud800", session=session) is None  # a token like any other
            assert stamp_used(kept_id, session=session)
            assert not stamp_used(kept_id, session=session)  # just stamped: nothing written
        with session_scope(engine) as session:
            just_used = find_token(kept_token, session=session)
            assert just_used is not None and not just_used.stamp_due  # read back as a datetime
            long_ago = utcnow() - LAST_USED_RESOLUTION - timedelta(minutes=1)
            session.execute(
                update(ApiToken).where(ApiToken.id == kept_id).values(last_used_at=long_ago)
            )
        with session_scope(engine) as session:
            stale = find_token(kept_token, session=session)
            assert stale is not None and stale.stamp_due
            assert stamp_used(kept_id, session=session)
    finally:
        engine.dispose()


def test_a_connection_the_server_dropped_is_replaced(
    postgres_url: str, drop_pooled_connection
) -> None:
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session:
            _, token = create_token("bob", session=session)
        with session_scope(engine) as session:
            assert find_token(token, session=session) is not None  # its connection now pooled
        drop_pooled_connection(engine)
        with session_scope(engine) as session:
            found = find_token(token, session=session)
        assert found is not None and found.user_id == "bob"
    finally:
        engine.dispose()
