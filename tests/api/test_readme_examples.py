"""The README's worked examples (beta to the market, a sector-relative return, the MACD
histogram), taken from README.md as written and run through the real service on the sample."""

from __future__ import annotations

import re

import pytest

from settings import PROJECT_ROOT
from tests.api.helpers import run_job

pytestmark = pytest.mark.usefixtures("celery_worker")

SYMBOLS = ["AAPL", "MSFT", "XOM", "JPM"]


def example(first_line: str) -> str:
    """The README's python block whose first line is ``first_line``."""
    text = (PROJECT_ROOT / "README.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"no README example starting {first_line!r}")


def test_beta_to_the_market_needs_lookback_253(client):
    code = example("# 1-year beta of daily returns to the market")
    body = {"script": code, "symbols": SYMBOLS, "reference": ["@market"]}
    job = run_job(client, {**body, "lookback": 253})
    assert job["errors"] == {}
    for symbol in SYMBOLS:
        assert isinstance(job["results"][symbol], float), symbol
        assert 0.0 < job["results"][symbol] < 3.0  # large caps move with the market
    short = run_job(client, body)  # the default 252 bars: 251 returns, no 252-pair window
    assert short["results"] == dict.fromkeys(SYMBOLS)


def test_sector_relative_return(client):
    code = example("# 20-day return relative to the symbol's sector index")
    job = run_job(client, {"script": code, "symbols": SYMBOLS, "reference": ["@sector"]})
    assert job["errors"] == {}
    assert all(isinstance(job["results"][s], float) for s in SYMBOLS)


def test_macd_histogram(client):
    code = example("# MACD histogram")
    job = run_job(client, {"script": code, "symbols": SYMBOLS})
    assert job["errors"] == {}
    for symbol in SYMBOLS:
        value = job["results"][symbol]
        assert isinstance(value["hist"], float) and value["turned_up"] in (0, 1)
