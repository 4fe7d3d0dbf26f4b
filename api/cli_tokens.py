"""``flask --app api tokens create USER | list | revoke ID``: tokens for ``CALC_AUTH=required``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from api.extension import calc
from db.session import session_scope
from db.tokens import create_token, list_tokens, revoke_token

tokens = AppGroup("tokens", help="Create, list and revoke API tokens.")


@tokens.command("create")
@click.argument("user")
@click.option("--name", default=None, help="A label for the token (e.g. the client using it).")
@with_appcontext
def create_command(user: str, name: str | None) -> None:
    """Make a token for USER. It is printed once, on the last line; only its hash is stored."""
    user = user.strip()
    if not 1 <= len(user) <= 100:
        raise click.BadParameter("USER must be 1 to 100 characters", param_hint="USER")
    with session_scope(calc().engine) as session:
        row, token = create_token(user, session=session, name=name)
        token_id = row.id
    click.echo(f"token {token_id} for user {user!r} (shown once; store it now):", err=True)
    click.echo(token)


@tokens.command("list")
@with_appcontext
def list_command() -> None:
    """Tokens by id, with their user and state (never the token itself)."""
    with session_scope(calc().engine) as session:
        for row in list_tokens(session=session):
            state = "revoked" if row.revoked_at else "active"
            used = row.last_used_at.isoformat() if row.last_used_at else "never"
            click.echo(f"{row.id}\t{row.user_id}\t{row.name or '-'}\t{state}\tlast used {used}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def revoke_command(token_id: int) -> None:
    """Revoke token TOKEN_ID (from ``tokens list``); requests with it then get 401."""
    with session_scope(calc().engine) as session:
        if not revoke_token(token_id, session=session):
            raise click.ClickException(f"no active token {token_id}")
    click.echo(f"revoked token {token_id}")


def register_token_cli(app: Flask) -> None:
    app.cli.add_command(tokens)
