"""``Client``: run, evaluate and save scripts from a notebook, through the public API only."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Unpack

import pandas as pd

from calc_client.job import Evaluation, Job, results_frame
from calc_client.transport import Transport, TransportOptions


def _day(value: date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else value


def _symbols(symbols: str | Iterable[str]) -> list[str]:
    if isinstance(symbols, str):
        return symbols.replace(",", " ").split()
    return [str(s) for s in symbols]


class Client:
    """A connection to the service at ``url`` (e.g. ``http://localhost:8000``).

    ``token``: the bearer token when the service runs with ``CALC_AUTH=required``. Requests
    are retried on 429 and 503 after the answer's ``Retry-After`` (``retries`` times, each
    wait at most ``max_wait`` seconds) and wait ``timeout`` seconds for an answer (defaults:
    ``Transport``'s). ``session``: a ``requests.Session`` of your own (proxies, certificates,
    adapters).
    """

    def __init__(
        self, url: str, token: str | None = None, **options: Unpack[TransportOptions]
    ) -> None:
        unknown = sorted(options.keys() - TransportOptions.__optional_keys__)
        if unknown:  # as the explicit keywords did: ``backoff`` and ``sleep`` are not a Client's
            raise TypeError(f"Client() got unexpected keyword arguments: {', '.join(unknown)}")
        self.transport = Transport(url, token, **options)

    def __repr__(self) -> str:
        return f"<calc_client.Client {self.transport.base}>"

    # ---- running -------------------------------------------------------------------------

    def validate(self, code: str) -> bool:
        """True if ``code`` compiles; else ``ScriptSyntaxError``/``SecurityError`` (with line)."""
        return bool(self.transport.json("POST", "/validate", json={"code": code})["valid"])

    def submit(
        self,
        script: str | None = None,
        symbols: str | Iterable[str] = (),
        *,
        script_id: int | None = None,
        params: dict[str, Any] | None = None,
        lookback: int | None = None,
        as_of: date | str | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """Queue ``script`` (code) or ``script_id`` over ``symbols``; returns at once.

        Every submit carries an ``Idempotency-Key`` (a fresh one unless given), kept across the
        client's retries: a submit retried after a lost answer or a 503 never queues twice.
        ``options``: further fields of ``POST /execute`` (``timeout``, ``reference``, ...).
        """
        body = self._body(script, script_id, symbols, params, lookback, **options)
        if as_of is not None:
            body["as_of"] = _day(as_of)
        return self._submit("/execute", body, idempotency_key)

    def run(
        self,
        script: str | None = None,
        symbols: str | Iterable[str] = (),
        *,
        progress: bool = True,
        timeout: float | None = None,
        **options: Any,
    ) -> Job:
        """``submit`` and ``wait``: the finished job (``to_frame()`` for a DataFrame).
        A job that failed as a whole raises ``JobFailed``."""
        job = self.submit(script, symbols, **options)
        return job.wait(progress=progress, timeout=timeout).raise_for_status()

    def submit_evaluation(
        self,
        script: str | None = None,
        symbols: str | Iterable[str] = (),
        *,
        start: date | str,
        end: date | str,
        every: int = 1,
        horizons: Sequence[int] = (1, 5, 21),
        quantiles: int = 5,
        neutralize: str | None = None,
        field: str | None = None,
        script_id: int | None = None,
        params: dict[str, Any] | None = None,
        lookback: int | None = None,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """Queue ``POST /evaluate``; returns at once (``job.wait()``, then ``job.evaluation``)."""
        body = self._body(script, script_id, symbols, params, lookback, **options)
        body.update(
            start=_day(start),
            end=_day(end),
            every=every,
            horizons=list(horizons),
            quantiles=quantiles,
            neutralize=neutralize,
            field=field,
        )
        return self._submit("/evaluate", body, idempotency_key)

    def evaluate(
        self,
        script: str | None = None,
        symbols: str | Iterable[str] = (),
        *,
        progress: bool = True,
        timeout: float | None = None,
        **options: Any,
    ) -> Evaluation:
        """Evaluate a signal over history and wait: the figures as DataFrames
        (``.horizons`` a row per horizon, ``.ic_series``, ``.quantile_returns``, ``.panel()``)."""
        job = self.submit_evaluation(script, symbols, **options)
        return job.wait(progress=progress, timeout=timeout).raise_for_status().evaluation

    def job(self, job_id: str) -> Job:
        return Job(self, self.transport.json("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> Job:
        return Job(self, self.transport.json("DELETE", f"/jobs/{job_id}"))

    def jobs(self, limit: int = 50) -> pd.DataFrame:
        """The caller's recent jobs, newest first (without results)."""
        items = self.transport.json("GET", "/jobs", params={"limit": limit})["items"]
        frame = pd.DataFrame(items)
        return frame.set_index("job_id") if len(frame) else frame

    def universe(self) -> pd.DataFrame:
        """Every symbol with market data (index), its name and sector."""
        data = self.transport.json("GET", "/universe")
        return pd.DataFrame(data["symbols"], columns=["symbol", "name", "sector"]).set_index(
            "symbol"
        )

    # ---- saved scripts -------------------------------------------------------------------

    def scripts(self, q: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The caller's saved scripts, newest first (``q`` matches name or description)."""
        params: dict[str, Any] = {"limit": limit}
        if q:
            params["q"] = q
        return self.transport.json("GET", "/scripts", params=params)["items"]

    def script(self, script_id: int) -> dict[str, Any]:
        return self.transport.json("GET", f"/scripts/{script_id}")

    def save_script(
        self,
        name: str,
        code: str,
        *,
        description: str | None = None,
        schedule: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save a new script (``Conflict`` if the name is taken); returns it with its ``id``."""
        body = {"name": name, "description": description, "code": code, "schedule": schedule}
        return self.transport.json("POST", "/scripts", json=body)

    def update_script(self, script_id: int, **changes: Any) -> dict[str, Any]:
        """Change some fields (name, description, code, schedule) of a saved script."""
        current = self.script(script_id)
        body = {k: current[k] for k in ("name", "description", "code", "schedule")}
        unknown = set(changes) - set(body)
        if unknown:
            raise TypeError(f"unknown script fields: {sorted(unknown)}")
        body.update(changes)
        return self.transport.json("PUT", f"/scripts/{script_id}", json=body)

    def delete_script(self, script_id: int) -> None:
        self.transport.json("DELETE", f"/scripts/{script_id}")

    def script_results(self, script_id: int) -> pd.DataFrame:
        """The newest finished run of a saved script, a row per symbol (as ``to_frame``)."""
        run = self.transport.json("GET", f"/scripts/{script_id}/results")
        frame = results_frame(run["results"], run["errors"], {})
        frame.attrs.update(job_id=run["job_id"], finished_at=run["finished_at"])
        return frame

    # ---- internals -----------------------------------------------------------------------

    def _body(
        self,
        script: str | None,
        script_id: int | None,
        symbols: str | Iterable[str],
        params: dict[str, Any] | None,
        lookback: int | None,
        **options: Any,
    ) -> dict[str, Any]:
        if (script is None) == (script_id is None):
            raise TypeError("give exactly one of script (code) or script_id")
        body: dict[str, Any] = {"symbols": _symbols(symbols)}
        if script is not None:
            body["script"] = script
        else:
            body["script_id"] = script_id
        if params is not None:
            body["params"] = params
        if lookback is not None:
            body["lookback"] = lookback
        body.update(options)
        return body

    def _submit(self, path: str, body: dict[str, Any], key: str | None) -> Job:
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        data = self.transport.json("POST", path, json=body, headers=headers, repeatable=True)
        return Job(self, data)
