"""``cross_section`` of a finished execute job (API.md, Cross-sectional transforms): each
symbol's number against the others', computed once by the worker that finishes the job."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

TRANSFORMS = ("rank", "zscore", "demean")


def transform(
    values: Mapping[str, Any],
    *,
    how: str,
    neutralize: str | None,
    sectors: Mapping[str, str | None],
) -> dict[str, float | None]:
    """Over the symbols with a finite number: ``rank`` (percentile in (0, 1], ties averaged,
    as ``Series.rank(pct=True)``), ``zscore`` ((x - mean) / sample stdev) or ``demean``
    (x - mean), after subtracting each sector's mean when ``neutralize`` is ``"sector"``."""
    numbers = {
        s: float(v)
        for s, v in values.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
    series = pd.Series(numbers, dtype=float)
    if series.empty:
        return {}
    if neutralize == "sector":
        groups = pd.Series([sectors.get(s) or "" for s in series.index], index=series.index)
        series = series - series.groupby(groups).transform("mean")
    if how == "rank":
        out = series.rank(pct=True)
    elif how == "zscore":
        std = series.std(ddof=1)
        out = (series - series.mean()) / std if len(series) > 1 and std > 0 else series * math.nan
    elif how == "demean":
        out = series - series.mean()
    else:
        raise ValueError(f"unknown transform {how!r}")
    return {s: (float(v) if math.isfinite(v) else None) for s, v in out.items()}
