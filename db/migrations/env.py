"""Alembic's environment: runs migrations on a connection handed over by db.migrate, or on
a URL given on the command line (``-x url=...``).

Logging is left alone when called from code: the app (or pytest) owns its configuration,
and Alembic's usual ``fileConfig`` would silently disable every existing logger.
"""

from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import Connection

from db.migrate import migration_connection
from db.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("no database URL: pass -x url=... (e.g. -x url=sqlite:///instance/x.db)")
    return url


def _render_item(type_: str, obj: object, _autogen_context: object) -> str | bool:
    """Autogenerate writes our UTC column type as the plain type it stores, so migrations do
    not import db.models (whose code will move on while old revisions must not)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_offline() -> None:
    """``alembic ... upgrade head --sql``: print the SQL instead of running it."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # db.migrate handed us its connection (and its transaction)
        _run(connection)
        return
    # The alembic command line: say what runs, as Alembic's own fileConfig set-up would.
    if config.cmd_opts is not None and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)-5.5s [%(name)s] %(message)s")
    with migration_connection(_url()) as connection:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rewrites them as copy-and-rename.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
