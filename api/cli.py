"""Operator commands on the app: ``flask --app api init-db | load-market-data | seed-sample``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from db.loader import LoadFileError, LoadReport, count_data_lines, load_prices_csv, load_stocks_csv
from db.market_data import latest_date
from db.migrate import upgrade_to_head
from db.session import make_engine, redact_url, session_scope
from settings import PROJECT_ROOT, Settings

SAMPLE_DIR = PROJECT_ROOT / "data" / "sample"


def register_cli(app: Flask) -> None:
    """Add the database commands to ``app.cli`` (``create_app`` calls this)."""
    app.cli.add_command(init_db_command)
    app.cli.add_command(load_market_data_command)
    app.cli.add_command(seed_sample_command)


@click.command("init-db")
@click.option(
    "--market-data/--no-market-data",
    default=False,
    help="Also migrate a separate MARKET_DATA_URL (a development copy; never the fund's "
    "read-only production database).",
)
@with_appcontext
def init_db_command(market_data: bool) -> None:
    """Apply the migrations to the app database (and, if asked, a separate market-data one)."""
    _migrate(_settings(), market_data=market_data)


@click.command("load-market-data")
@click.argument("prices", type=click.Path(path_type=Path))
@click.option(
    "--stocks",
    type=click.Path(path_type=Path),
    help="CSV of symbol,name,sector,industry to load first.",
)
@click.option(
    "--batch-size",
    default=5000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows per upsert.",
)
@with_appcontext
def load_market_data_command(prices: Path, stocks: Path | None, batch_size: int) -> None:
    """Load daily bars from PRICES (.csv or .csv.gz: symbol,date,open,high,low,close,volume).

    Loading the same file again changes nothing; bad rows are listed and skipped.
    """
    for path in (stocks, prices):
        if path is not None:
            _check_readable(path)
    _load(_settings().market_data_url_or_default, prices, stocks, batch_size=batch_size)


@click.command("seed-sample")
@with_appcontext
def seed_sample_command() -> None:
    """Migrate, then load the shipped sample market data unless bars are already there."""
    settings = _settings()
    _migrate(settings, market_data=True)  # the sample goes into a database of our own
    url = settings.market_data_url_or_default
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            newest = latest_date(session=session)
    except SQLAlchemyError as error:
        raise click.ClickException(f"cannot read {redact_url(url)}: {_reason(error)}") from error
    finally:
        engine.dispose()
    if newest is not None:
        click.echo(f"market data present (newest bar {newest.isoformat()}); sample not loaded")
        return
    _load(url, SAMPLE_DIR / "prices.csv.gz", SAMPLE_DIR / "stocks.csv", batch_size=5000)


def _settings() -> Settings:
    return current_app.extensions["calc"].settings


def _migrate(settings: Settings, *, market_data: bool) -> None:
    urls = dict.fromkeys([settings.database_url])
    if market_data:
        urls[settings.market_data_url_or_default] = None
    for url in urls:
        try:
            upgrade_to_head(url)
        except SQLAlchemyError as error:
            raise click.ClickException(
                f"cannot migrate {redact_url(url)}: {_reason(error)}"
            ) from error
        click.echo(f"database {redact_url(url)} is at the newest schema")


def _check_readable(path: Path) -> None:
    """Fail before touching the database, with one line, rather than a traceback."""
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror or error}") from error


def _load(url: str, prices: Path, stocks: Path | None, *, batch_size: int) -> None:
    engine = make_engine(url)
    try:
        if stocks is not None:
            with session_scope(engine) as session:
                report = load_stocks_csv(stocks, session=session)
            _print_report(stocks, report, noun="stocks")
        total = count_data_lines(prices)
        with (
            click.progressbar(length=total, label=f"loading {prices.name}", file=sys.stderr) as bar,
            session_scope(engine) as session,
        ):
            report = load_prices_csv(
                prices, session=session, batch_size=batch_size, progress=bar.update
            )
        _print_report(prices, report, noun="rows")
    except LoadFileError as error:
        raise click.ClickException(str(error)) from error
    except SQLAlchemyError as error:
        raise click.ClickException(
            f"loading into {redact_url(url)} failed: {_reason(error)} "
            "(nothing from this file was kept; is the schema there? try: flask --app api init-db)"
        ) from error
    finally:
        engine.dispose()


def _print_report(path: Path, report: LoadReport, *, noun: str) -> None:
    for line, message in report.problems:
        click.echo(f"{path.name}:{line}: {message}", err=True)
    if report.skipped > len(report.problems):
        more = report.skipped - len(report.problems)
        click.echo(f"{path.name}: ... and {more:,} more", err=True)
    see = " (see above)" if report.skipped else ""
    click.echo(
        f"{path.name}: loaded {report.loaded:,} {noun}, {report.unchanged:,} unchanged, "
        f"skipped {report.skipped:,}{see}"
    )


def _reason(error: SQLAlchemyError) -> str:
    """The driver's first line, without SQLAlchemy's statement dump and help link."""
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__
