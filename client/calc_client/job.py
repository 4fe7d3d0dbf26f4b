"""A job of the service, and an evaluation's figures as pandas DataFrames."""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

from calc_client.errors import JobFailed

if TYPE_CHECKING:
    from calc_client.client import Client

FINISHED = frozenset({"completed", "failed", "timed_out", "cancelled"})


class Job:
    """A job as the service last answered it (``data``); ``refresh()`` asks again."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    def __repr__(self) -> str:
        done, total = self.progress
        return f"<Job {self.id} {self.kind} {self.status} {done}/{total}>"

    @property
    def id(self) -> str:
        return self.data["job_id"]

    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def kind(self) -> str:
        return self.data.get("kind") or ("evaluation" if "evaluation" in self.data else "execute")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def progress(self) -> tuple[int, int]:
        p = self.data.get("progress") or {}
        return int(p.get("done", 0)), int(p.get("total", 0))

    @property
    def results(self) -> dict[str, Any]:
        return self.data.get("results") or {}

    @property
    def errors(self) -> dict[str, dict[str, Any]]:
        return self.data.get("errors") or {}

    @property
    def stdout(self) -> dict[str, str]:
        return self.data.get("stdout") or {}

    @property
    def error(self) -> dict[str, Any] | None:
        return self.data.get("error")

    def refresh(self) -> Job:
        self.data = self.client.transport.json("GET", f"/jobs/{self.id}")
        return self

    def cancel(self) -> Job:
        self.data = self.client.transport.json("DELETE", f"/jobs/{self.id}")
        return self

    def wait(
        self, *, progress: bool = True, timeout: float | None = None, poll: float = 0.25
    ) -> Job:
        """Poll until the job finishes, with a tqdm bar (a widget in Jupyter, text in a
        terminal). ``timeout`` seconds (None: no limit) raises ``TimeoutError``; the job
        keeps running on the service."""
        end = None if timeout is None else time.monotonic() + timeout
        unit = "symbol-dates" if self.kind == "evaluation" else "symbols"
        done, total = self.progress
        with tqdm(total=total, unit=unit, disable=not progress, desc=self.kind) as bar:
            while True:
                done, total = self.progress
                if bar.total != total:
                    bar.total = total
                    bar.refresh()
                bar.update(done - bar.n)
                bar.set_postfix_str(self.status, refresh=False)
                if self.finished:
                    break
                if end is not None and time.monotonic() > end:
                    raise TimeoutError(f"job {self.id} is still {self.status} after {timeout} s")
                time.sleep(poll)
                self.refresh()
        return self

    def raise_for_status(self) -> Job:
        """``JobFailed`` for a ``failed`` job (a job-level error); the job otherwise."""
        if self.status == "failed":
            err = self.error or {}
            raise JobFailed(
                str(err.get("message") or "the job failed"),
                type=str(err.get("type") or "JobFailed"),
                job=self,
            )
        return self

    def to_frame(self) -> pd.DataFrame:
        """A row per symbol (index ``symbol``, in the order asked): ``value`` (or one column
        per key of a dict result), then ``error_type``, ``error_message``, ``error_line``,
        and ``stdout`` when any symbol printed."""
        return results_frame(self.results, self.errors, self.stdout)

    def results_csv(self) -> pd.DataFrame:
        """The service's own export (``GET /jobs/{id}/results.csv``) as a DataFrame."""
        text = self.client.transport.request(
            "GET", f"/jobs/{self.id}/results.csv", accept="text/csv"
        ).text
        return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])

    @property
    def evaluation(self) -> Evaluation:
        """The figures of a finished evaluation job."""
        if "evaluation" not in self.data or self.data["evaluation"] is None:
            raise ValueError(f"job {self.id} is {self.kind} and {self.status}: no evaluation")
        return Evaluation(self, self.data["evaluation"])


def results_frame(
    results: dict[str, Any], errors: dict[str, dict[str, Any]], stdout: dict[str, str]
) -> pd.DataFrame:
    symbols = list(results) + [s for s in errors if s not in results]
    keys: list[str] = []
    scalar = False
    for value in results.values():
        if isinstance(value, dict):
            keys.extend(k for k in value if k not in keys)
        elif value is not None:
            scalar = True
    value_columns = (["value"] if scalar or not keys else []) + keys
    rows = []
    for symbol in symbols:
        value = results.get(symbol)
        row: dict[str, Any] = {}
        for column in value_columns:
            if column == "value":
                row[column] = value if isinstance(value, int | float) else None
            else:
                row[column] = value.get(column) if isinstance(value, dict) else None
        err = errors.get(symbol) or {}
        row["error_type"] = err.get("type")
        row["error_message"] = err.get("message")
        row["error_line"] = err.get("line")
        if stdout:
            row["stdout"] = stdout.get(symbol)
        rows.append(row)
    columns = [*value_columns, "error_type", "error_message", "error_line"]
    if stdout:
        columns.append("stdout")
    frame = pd.DataFrame(rows, index=pd.Index(symbols, name="symbol"), columns=columns)
    for column in value_columns:
        frame[column] = frame[column].astype("float64")
    frame["error_line"] = frame["error_line"].astype("Int64")
    return frame


class Evaluation:
    """An evaluation's figures (API.md "Evaluating a signal over history") as DataFrames."""

    FIGURES = (
        "ic_mean",
        "ic_std",
        "ic_ir",
        "ic_t",
        "ic_hit_rate",
        "ic_dates",
        "spread_mean",
        "spread_t",
        "turnover_top",
        "turnover_bottom",
        "rank_autocorrelation",
    )

    def __init__(self, job: Job, data: dict[str, Any]) -> None:
        self.job = job
        self.data = data

    def __repr__(self) -> str:
        return f"<Evaluation of job {self.job.id}: {self.data.get('dates')} dates>"

    @property
    def summary(self) -> dict[str, Any]:
        """Dates, symbols, runs, coverage, skipped dates and errors by type."""
        return {k: v for k, v in self.data.items() if k not in ("horizons", "ic_series")}

    @property
    def horizons(self) -> pd.DataFrame:
        """A row per horizon (index ``horizon``, trading days): IC mean, IR, t, hit rate, ..."""
        horizons = self.data.get("horizons") or {}
        order = sorted(horizons, key=int)
        frame = pd.DataFrame(
            [{k: horizons[h].get(k) for k in self.FIGURES} for h in order],
            index=pd.Index([int(h) for h in order], name="horizon"),
            columns=list(self.FIGURES),
        )
        return frame.astype("float64")

    @property
    def quantile_returns(self) -> pd.DataFrame:
        """Mean forward return per quantile (rows, 1 first) and horizon (columns)."""
        horizons = self.data.get("horizons") or {}
        columns = {int(h): horizons[h].get("quantile_returns") or [] for h in horizons}
        frame = pd.DataFrame({h: pd.Series(v, dtype="float64") for h, v in columns.items()})
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="quantile")
        frame.columns.name = "horizon"
        return frame[sorted(frame.columns)]

    @property
    def ic_series(self) -> pd.DataFrame:
        """The IC per rebalance date (index ``date``) and horizon (columns)."""
        series = self.data.get("ic_series") or {}
        columns = {
            int(h): pd.Series(
                [v for _, v in points],
                index=pd.to_datetime([d for d, _ in points]),
                dtype="float64",
            )
            for h, points in series.items()
        }
        frame = pd.DataFrame(columns)
        frame.index.name = "date"
        frame.columns.name = "horizon"
        return frame[sorted(frame.columns)] if len(frame.columns) else frame

    def panel(self) -> pd.DataFrame:
        """The panel export (``GET /jobs/{id}/panel.csv``): a row per symbol-date."""
        text = self.job.client.transport.request(
            "GET", f"/jobs/{self.job.id}/panel.csv", accept="text/csv"
        ).text
        return pd.read_csv(io.StringIO(text), parse_dates=["date"])
