"""The CSV loaders on SQLite and PostgreSQL: bad rows, idempotent reloads, data versions."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from db.loader import MAX_PROBLEMS, LoadFileError, load_prices_csv, load_stocks_csv
from db.market_data import data_versions
from db.models import StockDailyData, StockInfo
from db.session import session_scope

HEADER = "symbol,date,open,high,low,close,volume\n"
GOOD = (
    "AAA,2024-01-02,10.5,11,10,10.75,1000\n"
    "AAA,2024-01-03,10.75,12.25,10.5,12,2000\n"
    "BBB,2024-01-02,100,101,99,100.5,0\n"
    "BBB,2024-01-03,100.5,102,100,101.25,3000\n"
)


def _write(path: Path, content: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(content.encode()))
    else:
        path.write_text(content)
    return path


def _stored(engine: Engine) -> dict[tuple[str, str], tuple[float, float, float, float, int]]:
    with session_scope(engine) as session:
        rows = session.execute(select(StockDailyData)).scalars().all()
        return {
            (r.symbol, r.date.isoformat()): (r.open, r.high, r.low, r.close, r.volume) for r in rows
        }


def _load(engine: Engine, path: Path, **options: object):
    with session_scope(engine) as session:
        return load_prices_csv(path, session=session, **options)


def _versions(engine: Engine, symbols: list[str]) -> dict[str, int]:
    with session_scope(engine) as session:
        return data_versions(symbols, session=session)


def test_malformed_rows_are_reported_with_their_line_and_skipped(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    content = (
        HEADER  # line 1
        + "AAA,2024-01-02,10.5,11,10,10.75,1000\n"  # 2 good
        + "AAA,2024-01-03,10.75,12.25\n"  # 3 too few columns
        + "AAA,2024-01-04,x,12,10,11,5\n"  # 4 not a number
        + "AAA,2024/01/05,10,12,10,11,5\n"  # 5 bad date format
        + "AAA,2024-02-30,10,12,10,11,5\n"  # 6 impossible date
        + "AAA,2024-01-08,0,12,10,11,5\n"  # 7 non-positive price
        + "AAA,2024-01-09,10,12,10,11,-5\n"  # 8 negative volume
        + "AAA,2024-01-10,10,9,10,11,5\n"  # 9 high below low
        + " ,2024-01-11,10,12,10,11,5\n"  # 10 empty symbol
        + "\n"  # 11 blank: ignored, not a problem
        + " bbb ,2024-01-02,100,101,99,100.5,7\n"  # 12 good, symbol normalised
        + "AAA,2024-01-12,nan,12,10,11,5\n"  # 13 not finite
        + "AAA,2024-01-15,10,12,10,11,5.5\n"  # 14 fractional volume
        + "CCC,2024-01-02,1,2,1,1.5,100.0\n"  # 15 good: whole-number volume as float
        + "A-SYMBOL-MUCH-TOO-LONG-FOR-THE-COLUMN,2024-01-02,1,2,1,1.5,1\n"  # 16 too long
        + "AAA,2024-01-16,10,12,10,11,5,extra\n"  # 17 too many columns
    )
    report = _load(fresh_engine, _write(tmp_path / "bad.csv", content))

    said = {  # line -> what its problem says
        3: "expected 7 columns, got 4",
        4: "open 'x' is not a number",
        5: "not YYYY-MM-DD",
        6: "not a valid date",
        7: "open '0' is not positive",
        8: "volume '-5' is negative",
        9: "high 9 is below low 10",
        10: "empty symbol",
        13: "not a finite number",
        14: "not a whole number",
        16: "longer than 20",
        17: "got 8",
    }
    assert [line for line, _ in report.problems] == list(said)
    messages = dict(report.problems)
    for line, words in said.items():
        assert words in messages[line], line
    assert (report.loaded, report.unchanged, report.skipped) == (3, 0, 12)
    assert _stored(fresh_engine) == {
        ("AAA", "2024-01-02"): (10.5, 11.0, 10.0, 10.75, 1000),
        ("BBB", "2024-01-02"): (100.0, 101.0, 99.0, 100.5, 7),
        ("CCC", "2024-01-02"): (1.0, 2.0, 1.0, 1.5, 100),
    }


def test_loading_the_same_file_twice_changes_nothing(fresh_engine: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path / "prices.csv", HEADER + GOOD)
    first = _load(fresh_engine, path)
    stored, versions = _stored(fresh_engine), _versions(fresh_engine, ["AAA", "BBB"])

    second = _load(fresh_engine, path)

    assert (first.loaded, first.unchanged, first.skipped) == (4, 0, 0)
    assert (second.loaded, second.unchanged, second.skipped) == (0, 4, 0)
    assert _stored(fresh_engine) == stored
    assert _versions(fresh_engine, ["AAA", "BBB"]) == versions == {"AAA": 1, "BBB": 1}


def test_a_changed_price_updates_its_row_and_bumps_only_its_symbol(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    _load(fresh_engine, _write(tmp_path / "v1.csv", HEADER + GOOD))
    changed = GOOD.replace(
        "BBB,2024-01-03,100.5,102,100,101.25", "BBB,2024-01-03,100.5,102,100,101.5"
    )
    report = _load(fresh_engine, _write(tmp_path / "v2.csv", HEADER + changed))

    assert (report.loaded, report.unchanged) == (1, 3)
    assert _stored(fresh_engine)[("BBB", "2024-01-03")] == (100.5, 102.0, 100.0, 101.5, 3000)
    assert _versions(fresh_engine, ["AAA", "BBB", "ZZZ"]) == {"AAA": 1, "BBB": 2}

    # A new date for AAA is a change to AAA too.
    added = _load(
        fresh_engine, _write(tmp_path / "v3.csv", HEADER + "AAA,2024-01-04,12,13,11,12.5,10\n")
    )
    assert (added.loaded, added.unchanged) == (1, 0)
    assert _versions(fresh_engine, ["AAA", "BBB"]) == {"AAA": 2, "BBB": 2}


@pytest.mark.parametrize("name", ["prices.csv.gz", "prices.csv", "gzipped-without-suffix.csv"])
def test_gzip_and_plain_csv_load_the_same(fresh_engine: Engine, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.startswith("gzipped"):
        path.write_bytes(gzip.compress((HEADER + GOOD).encode()))  # found by its magic bytes
    else:
        _write(path, HEADER + GOOD)
    report = _load(fresh_engine, path)
    assert (report.loaded, report.skipped) == (4, 0)
    assert _stored(fresh_engine)[("AAA", "2024-01-03")] == (10.75, 12.25, 10.5, 12.0, 2000)


def test_batches_and_progress_cover_every_line(fresh_engine: Engine, tmp_path: Path) -> None:
    lines = [
        f"S{n % 7},{dt.date(2020, 1, 1) + dt.timedelta(days=n)},1,2,1,1.5,{n}\n" for n in range(53)
    ]
    lines.insert(20, "BAD,line\n")
    seen: list[int] = []
    report = _load(
        fresh_engine,
        _write(tmp_path / "p.csv", HEADER + "".join(lines)),
        batch_size=10,
        progress=seen.append,
    )
    assert (report.loaded, report.skipped) == (53, 1)
    assert report.problems == [(22, "expected 7 columns, got 2")]
    assert sum(seen) == 54 and len(seen) >= 6
    assert len(_stored(fresh_engine)) == 53


def test_a_repeated_row_in_one_file_keeps_the_later_one(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    content = HEADER + GOOD + "aaa,2024-01-02,10.5,11,10,10.8,1000\n"  # line 6 repeats line 2
    report = _load(fresh_engine, _write(tmp_path / "dup.csv", content))
    assert report.skipped == 1
    assert report.problems[0][0] == 2 and "line 6" in report.problems[0][1]
    assert _stored(fresh_engine)[("AAA", "2024-01-02")][3] == 10.8


def test_problems_are_capped_but_all_counted(fresh_engine: Engine, tmp_path: Path) -> None:
    content = HEADER + "X,bad\n" * (MAX_PROBLEMS + 50) + GOOD
    report = _load(fresh_engine, _write(tmp_path / "many.csv.gz", content))
    assert report.skipped == MAX_PROBLEMS + 50
    assert len(report.problems) == MAX_PROBLEMS
    assert report.loaded == 4


def test_the_loader_leaves_the_transaction_to_its_caller(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "prices.csv", HEADER + GOOD)
    with session_scope(fresh_engine) as session:
        load_prices_csv(path, session=session)
        session.rollback()
    assert _stored(fresh_engine) == {}
    assert _versions(fresh_engine, ["AAA"]) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file"),
        ("", "is empty"),
        ("sym,date,open\nA,1,2\n", "expected the header symbol,date,open,high,low,close,volume"),
        (b"\x1f\x8b\x08\x00truncated", "cannot read"),
        (b"symbol,date,open,high,low,close,volume\n\xff\xfe,2020-01-01\n", "cannot read"),
    ],
)
def test_an_unreadable_file_fails_as_a_whole(
    fresh_engine: Engine, tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "broken.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(LoadFileError, match=message):
        _load(fresh_engine, path)


def test_a_truncated_gzip_rolls_back_the_whole_file(fresh_engine: Engine, tmp_path: Path) -> None:
    data = gzip.compress(
        (HEADER + GOOD * 1).encode()
        + b"".join(f"T{n},2024-01-02,1,2,1,1.5,1\n".encode() for n in range(20000))
    )
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadFileError, match="cannot read"):
        _load(fresh_engine, path, batch_size=100)
    assert _stored(fresh_engine) == {}


def test_stocks_load_idempotently_and_info_changes_bump_versions(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    stocks = (
        "symbol,name,sector,industry\n"
        'aaa,Triple A Inc.,Energy,"Oil, Gas & Fuels"\n'
        "BBB,Bee Corp,,\n"
        "CCC,Sea Ltd,Utilities,Water\n"
        ",Nameless,X,Y\n"
        "DDD,too,few\n"
    )
    path = _write(tmp_path / "stocks.csv", stocks)
    with session_scope(fresh_engine) as session:
        first = load_stocks_csv(path, session=session)
    with session_scope(fresh_engine) as session:
        second = load_stocks_csv(path, session=session)
    changed = _write(tmp_path / "stocks2.csv", stocks.replace("Water", "Water Utilities"))
    with session_scope(fresh_engine) as session:
        third = load_stocks_csv(changed, session=session)
        info = {
            s.symbol: (s.name, s.sector, s.industry) for s in session.scalars(select(StockInfo))
        }

    assert (first.loaded, first.unchanged, first.skipped) == (3, 0, 2)
    assert [line for line, _ in first.problems] == [5, 6]
    assert (second.loaded, second.unchanged) == (0, 3)
    assert (third.loaded, third.unchanged) == (1, 2)
    assert info == {
        "AAA": ("Triple A Inc.", "Energy", "Oil, Gas & Fuels"),
        "BBB": ("Bee Corp", None, None),
        "CCC": ("Sea Ltd", "Utilities", "Water Utilities"),
    }
    assert _versions(fresh_engine, ["AAA", "BBB", "CCC"]) == {"AAA": 1, "BBB": 1, "CCC": 2}


def test_the_loaders_accept_a_byte_order_mark(fresh_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeff" + HEADER + GOOD).encode())
    assert _load(fresh_engine, path).loaded == 4
    with session_scope(fresh_engine) as session:
        assert session.scalar(select(func.count()).select_from(StockDailyData)) == 4
