"""panel.csv is made from the numbers the finisher stored, a few dates at a time."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from workers import panel_csv


def _rows(dates: int, symbols: int, horizons: int):
    for d in range(dates):
        values = np.arange(symbols, dtype=float) + d / 4
        values[0] = np.nan  # no value for the first symbol
        quantiles = [np.array([0] + [1 + s % 5 for s in range(1, symbols)])] * horizons
        forward = [np.full(symbols, 0.1 * (h + 1)) for h in range(horizons)]
        yield panel_csv.pack(values, quantiles, forward)


def test_the_csv_holds_every_symbol_date_with_its_numbers_as_stored():
    dates, symbols = ["2017-01-03", "2017-01-04"], ["A,B", 'Q"X', "C"]
    text = "".join(panel_csv.csv_blocks(dates, symbols, [1, 5], _rows(2, 3, 2)))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["date", "symbol", "value", "quantile_1", "quantile_5", "forward_1",
                       "forward_5"]  # fmt: skip
    assert [r[:2] for r in rows[1:]] == [[d, s] for d in dates for s in symbols]
    assert rows[1][2:] == ["", "", "", "0.1", "0.2"]  # NaN and quantile 0 are empty cells
    assert rows[5][2:] == ["1.25", "2", "2", "0.1", "0.2"]
    assert float(rows[6][2]) == 2.25 and math.isfinite(float(rows[6][5]))


def test_blocks_are_made_as_the_rows_are_read(monkeypatch):
    monkeypatch.setattr(panel_csv, "ROWS_PER_BLOCK", 100)
    read = []

    def rows():
        for i, raw in enumerate(_rows(50, 40, 1)):
            read.append(i)
            yield raw

    blocks = panel_csv.csv_blocks([f"d{i}" for i in range(50)], [f"S{i}" for i in range(40)],
                                  [1], rows())  # fmt: skip
    first = next(blocks)
    assert len(read) < 5 and first.startswith("date,symbol,value")
    rest = list(blocks)
    assert len(read) == 50 and len(rest) > 10
    assert sum(b.count("\n") for b in [first, *rest]) == 1 + 50 * 40


def test_a_panel_never_finished_has_no_rows():
    assert list(panel_csv.csv_blocks(["2017-01-03"], ["A"], [1], iter(()))) == []


def test_a_row_set_of_the_wrong_size_is_refused():
    raw = next(_rows(1, 3, 2))
    with pytest.raises(ValueError):
        panel_csv.unpack(raw, 4, 2)
