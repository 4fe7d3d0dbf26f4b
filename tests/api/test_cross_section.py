"""``cross_section`` on POST /execute: each transform as pandas defines it (API.md)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.api.helpers import BASE, run_job
from tests.workers.test_figures import market

pytestmark = pytest.mark.usefixtures("celery_worker")

SYMBOLS = ["AAPL", "MSFT", "AMZN", "IBM", "CSCO", "GS", "BAC", "C", "HD", "CAT", "XOM", "NOPE"]
# A tie on purpose (rank averages ties), a dict result and a None, neither of which counts.
CODE = (
    "r = close[-1] / close[-21] - 1\n"
    "if symbol == 'HD':\n    r = {'x': r}\n"
    "if symbol == 'CAT':\n    r = None\n"
    "result = round(r, 2) if isinstance(r, float) else r"
)


def numbers(job: dict) -> pd.Series:
    return pd.Series({s: v for s, v in job["results"].items() if isinstance(v, float)})


@pytest.mark.parametrize("transform", ["rank", "zscore", "demean"])
@pytest.mark.parametrize("neutralize", [None, "sector"])
def test_each_transform_over_the_finite_numbers(client, transform, neutralize):
    body = {
        "script": CODE,
        "symbols": SYMBOLS,
        "cross_section": {"neutralize": neutralize, "transform": transform},
    }
    job = run_job(client, body)
    assert job["status"] == "completed"
    x = numbers(job)
    if neutralize:
        _, sectors = market()
        groups = pd.Series([sectors.get(s) or "" for s in x.index], index=x.index)
        x = x - x.groupby(groups).transform("mean")
    expected = {
        "rank": x.rank(pct=True),
        "zscore": (x - x.mean()) / x.std(),
        "demean": x - x.mean(),
    }[transform]
    got = job["cross_section"]
    assert set(got) == set(expected.index)  # not HD (a dict), CAT (None), NOPE (an error)
    for symbol, value in expected.items():
        assert got[symbol] == pytest.approx(value, abs=1e-12)


def test_a_bad_cross_section_is_a_400_naming_it(client):
    body = {"script": CODE, "symbols": SYMBOLS, "cross_section": {"transform": "winsorize"}}
    response = client.post(f"{BASE}/execute", json=body)
    assert response.status_code == 400
    assert any(k.startswith("cross_section") for k in response.get_json()["error"]["details"])
    plain = run_job(client, {"script": CODE, "symbols": SYMBOLS[:2]})
    assert "cross_section" not in plain
