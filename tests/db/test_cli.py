"""The database commands through Flask's CLI runner, on both databases."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import func, inspect, select

from api.cli import register_cli
from db.models import StockDailyData, StockInfo
from db.session import make_engine, session_scope
from settings import Settings
from tests.conftest import TEST_REDIS_URL


def _app(settings: Settings) -> Flask:
    """The smallest app the commands need: settings where create_app keeps them."""
    app = Flask(__name__)
    app.extensions["calc"] = SimpleNamespace(settings=settings)
    register_cli(app)
    return app


def _count(url: str, model: type) -> int:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0
    finally:
        engine.dispose()


def test_init_db_migrates_a_separate_market_database_only_when_asked(tmp_path: Path) -> None:
    app_url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    market_url = f"sqlite:///{tmp_path / 'market.sqlite3'}"
    runner = _app(Settings(database_url=app_url, market_data_url=market_url)).test_cli_runner()

    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("newest schema") == 1
    engine = make_engine(market_url)
    assert inspect(engine).get_table_names() == []  # the fund's database is not ours to change
    engine.dispose()

    result = runner.invoke(args=["init-db", "--market-data"])

    assert result.exit_code == 0, result.output
    for url in (app_url, market_url):
        engine = make_engine(url)
        assert "stock_daily_data" in inspect(engine).get_table_names()
        engine.dispose()
    assert result.stdout.count("newest schema") == 2


def test_load_market_data_lists_bad_rows_and_succeeds(empty_url: str, tmp_path: Path) -> None:
    prices = tmp_path / "prices.csv.gz"
    prices.write_bytes(
        gzip.compress(
            b"symbol,date,open,high,low,close,volume\n"
            b"AAA,2024-01-02,1,2,1,1.5,10\n"
            b"AAA,2024-01-03,1,0.5,1,1.5,10\n"
            b"BBB,2024-01-02,2,3,2,2.5,20\n"
            b"BBB,not-a-date,2,3,2,2.5,20\n"
        )
    )
    stocks = tmp_path / "stocks.csv"
    stocks.write_text("symbol,name,sector,industry\nAAA,A Inc,Energy,Oil\nBBB,B Inc,,\n")
    runner = _app(Settings(database_url=empty_url)).test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0

    result = runner.invoke(
        args=["load-market-data", str(prices), "--stocks", str(stocks), "--batch-size", "2"]
    )

    assert result.exit_code == 0, result.output
    assert "prices.csv.gz:3: high 0.5 is below low 1" in result.stderr
    assert "prices.csv.gz:5: date 'not-a-date' is not YYYY-MM-DD" in result.stderr
    assert "prices.csv.gz: loaded 2 rows, 0 unchanged, skipped 2 (see above)" in result.stdout
    assert "stocks.csv: loaded 2 stocks, 0 unchanged, skipped 0" in result.stdout
    assert _count(empty_url, StockDailyData) == 2 and _count(empty_url, StockInfo) == 2

    again = runner.invoke(args=["load-market-data", str(prices)])
    assert again.exit_code == 0
    assert "loaded 0 rows, 2 unchanged, skipped 2" in again.stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, "cannot read {path}: No such file or directory"),
        (lambda path: path.write_bytes(b"\x1f\x8bnot really gzip"), "cannot read {path}"),
        (lambda path: path.write_text("a,b\n1,2\n"), "expected the header"),
        (lambda path: path.mkdir(), "cannot read {path}: Is a directory"),
    ],
)
def test_load_market_data_fails_with_one_line_for_a_bad_file(
    tmp_path: Path, make, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'calc.sqlite3'}"
    runner = _app(Settings(database_url=url)).test_cli_runner()
    runner.invoke(args=["init-db"])
    path = tmp_path / "prices.csv"
    make(path)

    result = runner.invoke(args=["load-market-data", str(path)])

    assert result.exit_code != 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and message.format(path=path) in error_lines[0]
    assert "Traceback" not in result.output


def test_load_market_data_before_init_db_says_what_to_do(tmp_path: Path) -> None:
    prices = tmp_path / "p.csv"
    prices.write_text("symbol,date,open,high,low,close,volume\nAAA,2024-01-02,1,2,1,1.5,10\n")
    runner = _app(Settings(database_url=f"sqlite:///{tmp_path / 'x.sqlite3'}")).test_cli_runner()
    result = runner.invoke(args=["load-market-data", str(prices)])
    assert result.exit_code != 0
    assert "init-db" in result.stderr and "Traceback" not in result.output


def test_seed_sample_loads_once(empty_url: str) -> None:
    runner = _app(Settings(database_url=empty_url)).test_cli_runner()

    first = runner.invoke(args=["seed-sample"])
    second = runner.invoke(args=["seed-sample"])

    assert first.exit_code == 0, first.output
    assert "prices.csv.gz: loaded 168,615 rows, 0 unchanged, skipped 0" in first.stdout
    assert "stocks.csv: loaded 300 stocks" in first.stdout
    assert second.exit_code == 0, second.output
    assert "sample not loaded" in second.stdout and "loaded 168,615" not in second.stdout
    assert _count(empty_url, StockDailyData) == 168_615


def test_create_app_registers_the_commands(tmp_path: Path, make_app) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.sqlite3'}", redis_url=TEST_REDIS_URL
    )
    app = make_app(settings)
    assert {"init-db", "load-market-data", "seed-sample"} <= set(app.cli.commands)
    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_make_run_start_on_the_postgresql_urls_users_write(scheme: str, tmp_path: Path) -> None:
    """``make run``'s start (init-db, then seed-sample) through the real command line, with
    DATABASE_URL and MARKET_DATA_URL as PostgreSQL's and Heroku's documents write them."""
    import os
    import subprocess
    import sys

    from sqlalchemy.engine import make_url

    from settings import PROJECT_ROOT
    from tests.conftest import _postgres_database

    app_databases, market_databases = _postgres_database(), _postgres_database()
    try:
        urls = [
            make_url(next(d)).set(drivername=scheme).render_as_string(hide_password=False)
            for d in (app_databases, market_databases)
        ]
        env = {**os.environ, "DATABASE_URL": urls[0], "MARKET_DATA_URL": urls[1]}
        flask = [str(Path(sys.executable).parent / "flask"), "--app", "api"]
        for command in (["init-db", "--market-data"], ["seed-sample"]):
            done = subprocess.run(
                [*flask, *command],
                check=False,
                cwd=PROJECT_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stderr
        assert "loaded 168,615 rows" in done.stdout
        assert _count(urls[1], StockDailyData) == 168_615
        engine = make_engine(urls[0])
        assert "custom_scripts" in inspect(engine).get_table_names()
        engine.dispose()
    finally:
        app_databases.close()
        market_databases.close()
