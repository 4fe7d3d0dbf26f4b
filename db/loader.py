"""Load daily bars and stock reference data from CSV (optionally gzipped) into the database.

Loading is an idempotent upsert: a row whose values are already stored is left alone and
counted as unchanged, and a symbol's data version moves only when its rows really changed,
so reloading a file never invalidates cached results. Bad rows are reported by line number
and skipped; they never abort the load.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, MetaData, Table, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import StockDailyData, StockDataVersion, StockInfo, utcnow

PRICES_HEADER = ("symbol", "date", "open", "high", "low", "close", "volume")
STOCKS_HEADER = ("symbol", "name", "sector", "industry")
MAX_PROBLEMS = 100  # listed in the report; every skipped row is still counted
SYMBOL_MAX_LENGTH = 20  # the symbol columns' size
_GZIP_MAGIC = b"\x1f\x8b"


class LoadFileError(Exception):
    """The file as a whole cannot be loaded (missing, unreadable, not CSV, wrong header)."""


@dataclass
class LoadReport:
    """What a load did. ``loaded`` counts rows inserted or changed; ``unchanged`` rows that
    were already stored with the same values; ``skipped`` bad rows (first few in ``problems``
    as (1-based line number, message))."""

    loaded: int = 0
    unchanged: int = 0
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)

    def problem(self, line: int, message: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((line, message))


def load_prices_csv(
    path: str | Path,
    *,
    session: Session,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    """Upsert daily bars from ``symbol,date,open,high,low,close,volume`` CSV (or .csv.gz).

    ``progress`` is called after each batch with the number of data lines just read
    (an increment, as ``click.progressbar``'s ``update`` takes).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    report = LoadReport()
    changed: set[str] = set()
    for batch, lines_read in _batches(path, PRICES_HEADER, batch_size, _parse_price_row, report):
        changed.update(_upsert(session, StockDailyData.__table__, batch, report))
        if progress is not None:
            progress(lines_read)
    _bump_versions(session, changed)
    return report


def load_stocks_csv(
    path: str | Path, *, session: Session, progress: Callable[[int], None] | None = None
) -> LoadReport:
    """Upsert reference data from ``symbol,name,sector,industry`` CSV (or .csv.gz).

    A symbol whose info changes gets a new data version too: scripts see ``info``, so a
    cached result computed with the old sector is stale.
    """
    report = LoadReport()
    changed: set[str] = set()
    for batch, lines_read in _batches(path, STOCKS_HEADER, 5000, _parse_stock, report):
        changed.update(_upsert(session, StockInfo.__table__, batch, report))
        if progress is not None:
            progress(lines_read)
    _bump_versions(session, changed)
    return report


# -- reading ------------------------------------------------------------------------------


def count_data_lines(path: str | Path) -> int:
    """Lines after the header (for a progress bar's length); a cheap pass over the bytes."""
    path = Path(path)
    try:
        with _open_binary(path) as raw:
            lines = sum(block.count(b"\n") for block in iter(lambda: raw.read(1 << 20), b""))
    except (OSError, EOFError) as error:
        raise LoadFileError(f"cannot read {path}: {error}") from error
    return max(lines - 1, 0)


def _open_binary(path: Path) -> io.BufferedIOBase:
    try:
        raw = path.open("rb")
        is_gzip = path.suffix == ".gz" or raw.peek(2)[:2] == _GZIP_MAGIC
    except OSError as error:
        raise LoadFileError(f"cannot read {path}: {error.strerror or error}") from error
    if not is_gzip:
        return raw
    raw.close()  # GzipFile(fileobj=...) would not close it; let gzip own the file instead
    try:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    except OSError as error:
        raise LoadFileError(f"cannot read {path}: {error.strerror or error}") from error


def _batches(
    path: str | Path,
    header: tuple[str, ...],
    batch_size: int,
    parse: Callable[[list[str]], dict[str, Any]],
    report: LoadReport,
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Parsed rows in batches (with the data lines read for each); bad rows go to ``report``.

    Within a batch a key seen twice keeps the later row (PostgreSQL refuses to upsert one row
    twice in a statement); the earlier one is reported as skipped.
    """
    path = Path(path)
    key_names = ("symbol", "date") if header == PRICES_HEADER else ("symbol",)
    batch: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}
    lines_read = 0
    for line_no, record in _records(path, header):
        lines_read += 1
        if not record or record == [""]:
            continue  # a blank line is not a row
        if len(record) != len(header):
            report.problem(line_no, f"expected {len(header)} columns, got {len(record)}")
            continue
        try:
            row = parse(record)
        except ValueError as error:
            report.problem(line_no, str(error))
            continue
        key = tuple(row[k] for k in key_names)
        if key in batch:
            earlier = batch[key][0]
            report.problem(earlier, f"{_describe(key)} appears again on line {line_no}, which wins")
        batch[key] = (line_no, row)
        if len(batch) >= batch_size:
            yield [row for _, row in batch.values()], lines_read
            batch, lines_read = {}, 0
    if batch or lines_read:
        yield [row for _, row in batch.values()], lines_read


def _records(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) after checking the header; read errors become LoadFileError."""
    line_no = 1
    try:
        with (
            _open_binary(path) as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text,
        ):
            reader = csv.reader(text)
            first = next(reader, None)
            if first is None:
                raise LoadFileError(f"{path} is empty; expected the header {','.join(header)}")
            if tuple(name.strip().lower() for name in first) != header:
                raise LoadFileError(
                    f"{path}: expected the header {','.join(header)}, got {','.join(first)}"
                )
            for record in reader:
                line_no = reader.line_num
                yield line_no, record
    except LoadFileError:
        raise
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        raise LoadFileError(f"cannot read {path} after line {line_no}: {error}") from error


def _describe(key: tuple[Any, ...]) -> str:
    return " ".join(str(part) for part in key)


def _parse_symbol(raw: str) -> str:
    symbol = raw.strip().upper()
    if not symbol:
        raise ValueError("empty symbol")
    if len(symbol) > SYMBOL_MAX_LENGTH:
        raise ValueError(f"symbol {symbol[:30]!r} is longer than {SYMBOL_MAX_LENGTH} characters")
    return symbol


def _parse_date(raw: str) -> dt.date:
    text = raw.strip()
    # fromisoformat alone would also take '20180207' or '2018-W06-3'; insist on YYYY-MM-DD.
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"date {raw!r} is not YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"date {raw!r} is not a valid date") from None


def _parse_positive(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} {raw!r} is not a finite number")
    if value <= 0:
        raise ValueError(f"{name} {raw!r} is not positive")
    return value


def _parse_volume(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"volume {raw!r} is not a number") from None
        if not number.is_integer():  # also false for nan and inf
            raise ValueError(f"volume {raw!r} is not a whole number") from None
        value = int(number)
    if value < 0:
        raise ValueError(f"volume {raw!r} is negative")
    return value


def _parse_price_row(record: list[str]) -> dict[str, Any]:
    symbol, date, open_, high, low, close, volume = record
    row = {
        "symbol": _parse_symbol(symbol),
        "date": _parse_date(date),
        "open": _parse_positive("open", open_),
        "high": _parse_positive("high", high),
        "low": _parse_positive("low", low),
        "close": _parse_positive("close", close),
        "volume": _parse_volume(volume),
    }
    if row["high"] < row["low"]:
        raise ValueError(f"high {high.strip()} is below low {low.strip()}")
    return row


def _parse_stock(record: list[str]) -> dict[str, Any]:
    symbol, name, sector, industry = record
    return {
        "symbol": _parse_symbol(symbol),
        "name": name.strip() or None,
        "sector": sector.strip() or None,
        "industry": industry.strip() or None,
    }


# -- writing ------------------------------------------------------------------------------


def _insert_for(connection: Connection, table: Table) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"loading into {dialect} is not supported")


def _upsert(
    session: Session, table: Table, rows: list[dict[str, Any]], report: LoadReport
) -> Sequence[str]:
    """Insert new rows and update changed ones, leaving identical ones as they are; answer
    the symbol of every row written."""
    if not rows:
        return ()
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg2":
        written = _upsert_via_copy(connection, table, rows)
    else:
        written = _upsert_via_insert(connection, table, rows)
    report.loaded += len(written)
    report.unchanged += len(rows) - len(written)
    return written


def _upsert_via_insert(
    connection: Connection, table: Table, rows: list[dict[str, Any]]
) -> Sequence[str]:
    """Portable path (SQLite; PostgreSQL drivers other than psycopg2): a batched upsert."""
    return (
        connection.execute(_upsert_statement(_insert_for(connection, table)), rows).scalars().all()
    )


def _upsert_via_copy(
    connection: Connection, table: Table, rows: list[dict[str, Any]]
) -> Sequence[str]:
    """PostgreSQL with psycopg2: COPY the batch into a temporary table and upsert from there.

    Several times faster than a multi-row INSERT, which psycopg2 builds by quoting every
    parameter into the SQL text. The upsert reads the batch alone (no join with the stored
    table, which the planner may turn into a scan of the whole table per batch).
    """
    names = [c.name for c in table.columns]
    staging = Table(
        f"load_{table.name}", MetaData(), *(Column(c.name, c.type) for c in table.columns)
    )
    preparer = connection.dialect.identifier_preparer
    staging_sql, table_sql = preparer.format_table(staging), preparer.format_table(table)
    # ON COMMIT DROP: the caller's transaction owns it; later batches of the same load reuse it.
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging_sql} (LIKE {table_sql}) ON COMMIT DROP"
        )
    )
    connection.execute(text(f"TRUNCATE {staging_sql}"))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([row[name] for name in names] for row in rows)
    buffer.seek(0)
    columns_sql = ", ".join(preparer.quote(name) for name in names)
    copy_sql = f"COPY {staging_sql} ({columns_sql}) FROM STDIN WITH (FORMAT csv)"
    cursor = connection.connection.dbapi_connection.cursor()  # same transaction as the session
    try:
        cursor.copy_expert(copy_sql, buffer)
    finally:
        cursor.close()
    insert = postgresql.insert(table).from_select(names, select(staging))
    return connection.execute(_upsert_statement(insert)).scalars().all()


def _upsert_statement(insert: Any) -> Any:
    """``insert`` made an upsert that writes only new or changed rows and returns their symbols.

    The ``WHERE`` on ``DO UPDATE`` makes an identical row a no-op, and RETURNING lists only the
    rows inserted or updated: the counts and the data versions need no read-before-write.
    """
    table = insert.table
    values = [c for c in table.columns if not c.primary_key]
    return insert.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={c.name: insert.excluded[c.name] for c in values},
        where=or_(*(c.is_distinct_from(insert.excluded[c.name]) for c in values)),
    ).returning(table.c.symbol)


def _bump_versions(session: Session, symbols: set[str]) -> None:
    if not symbols:
        return
    table = StockDataVersion.__table__
    insert = _insert_for(session.connection(), table)
    now = utcnow()
    stmt = insert.on_conflict_do_update(
        index_elements=[table.c.symbol],
        set_={"version": table.c.version + 1, "updated_at": insert.excluded.updated_at},
    )
    session.execute(stmt, [{"symbol": s, "version": 1, "updated_at": now} for s in sorted(symbols)])
