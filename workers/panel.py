"""An evaluation's panel in Redis, beside its job (and expiring with it), never in its JSON.

Keys (with the job's TTL):

- ``calc:job:{id}:panel``       hash: ``"{date index}|{symbol}"`` -> the run's outcome (JSON,
                                value or error, no stdout), each written once (``HSETNX``)
- ``calc:job:{id}:rows``        list: the finished panel's numbers, one packed row set per
                                rebalance date (``panel.csv`` is made of them: panel_csv.py)
- ``calc:job:{id}:evaluation``  string: the finished figures (API.md's ``evaluation``)
- ``calc:job:{id}:forward``     hash: symbol -> its forward returns, packed (workers/forward.py),
                                as the chunk that loaded its bars worked them out

Progress is the panel's length, so a redelivered chunk cannot count a run twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import redis

from workers.keys import (
    FIGURES_CLAIM_PART,
    FIGURES_PART,
    FORWARD_PART,
    PANEL_PART,
    ROWS_PART,
    job_key,
    job_part,
)
from workers.redis_text import text
from workers.tallies import RECORD_WITH_TALLIES, record_args

DATES_PER_READ = 8
_SCAN_COUNT = 5000


def field(index: int, symbol: str) -> str:
    return f"{index}|{symbol}"


def parse_field(raw: bytes | str) -> tuple[int, str]:
    index, _, symbol = text(raw).partition("|")
    return int(index), symbol


class PanelStore:
    """Reads and writes an evaluation's panel, rows and figures."""

    def __init__(self, client: redis.Redis, *, ttl_seconds: int):
        self.r = client
        self.ttl = ttl_seconds
        self._record = client.register_script(RECORD_WITH_TALLIES)

    def record(self, job_id: str, outcomes: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Write each run's outcome once (keyed by ``field``), counting its error and warnings
        into the job's tallies as it is first written; answer how many runs are done."""
        keys = self._record_keys(job_id)
        return int(self._record(keys=keys, args=self._record_args(outcomes)))

    def record_on(
        self, pipe: redis.client.Pipeline, job_id: str, outcomes: Iterable[tuple[str, dict]]
    ) -> None:
        """``record`` queued on ``pipe``, whose answer holds the runs done at that point. The
        script is called by its hash (a pipeline would ask the server whether it knows it on
        every send): on ``NoScriptError``, ``load_script`` and send the pipeline again."""
        keys = self._record_keys(job_id)
        pipe.evalsha(self._record.sha, len(keys), *keys, *self._record_args(outcomes))

    def _record_keys(self, job_id: str) -> list[str]:
        return [job_part(job_id, PANEL_PART), job_key(job_id), job_part(job_id, FIGURES_CLAIM_PART)]

    def load_script(self) -> None:
        self.r.script_load(RECORD_WITH_TALLIES)

    def _record_args(self, outcomes: Iterable[tuple[str, dict[str, Any]]]) -> list[Any]:
        dumps = orjson.dumps
        return record_args(
            self.ttl,
            (
                (key, dumps({"value": o.get("value"), "error": o["error"]}), o)
                if o.get("error")
                else (key, dumps({"value": o.get("value")}), o)
                for key, o in outcomes
            ),
        )

    def done(self, job_id: str) -> int:
        return int(self.r.hlen(job_part(job_id, PANEL_PART)))

    def recorded(self, job_id: str, fields: Iterable[str]) -> set[str]:
        """Which of ``fields`` are recorded: a chunk asks for its own runs only (the whole
        panel's keys, read by each of a job's dozens of chunks, cost more than the runs)."""
        wanted = list(fields)
        if not wanted:
            return set()
        present = self.r.hmget(job_part(job_id, PANEL_PART), wanted)
        return {f for f, value in zip(wanted, present, strict=True) if value is not None}

    def outcomes(self, job_id: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """Every recorded run: (date index, symbol, outcome), read in batches."""
        for raw, value in self.r.hscan_iter(job_part(job_id, PANEL_PART), count=_SCAN_COUNT):
            index, symbol = parse_field(raw)
            yield index, symbol, orjson.loads(value)

    def save_forward(self, job_id: str, packed: dict[str, bytes]) -> None:
        """Store symbols' forward returns (the same whoever stores them: a redelivered chunk
        writes the same bytes again)."""
        if not packed:
            return
        key = job_part(job_id, FORWARD_PART)
        pipe = self.r.pipeline(transaction=False)
        pipe.hset(key, mapping=packed)
        pipe.expire(key, self.ttl)
        pipe.execute()

    def drop_forward(self, job_id: str) -> None:
        """Forget the forward returns once the figures (and the panel's rows) hold them."""
        self.r.delete(job_part(job_id, FORWARD_PART))

    def forward(self, job_id: str) -> dict[str, bytes]:
        """Every stored symbol's forward returns, packed."""
        return {text(k): v for k, v in self.r.hgetall(job_part(job_id, FORWARD_PART)).items()}

    def save_result(self, job_id: str, evaluation: dict[str, Any], rows: Iterable[bytes]) -> bool:
        """Store the figures and the panel's packed rows once (the first finisher's stay)."""
        if not self.r.set(
            job_part(job_id, FIGURES_PART), orjson.dumps(evaluation), nx=True, ex=self.ttl
        ):
            return False
        pipe = self.r.pipeline(transaction=False)
        key = job_part(job_id, ROWS_PART)
        pipe.delete(key)
        for row in rows:
            pipe.rpush(key, row)
        pipe.expire(key, self.ttl)
        pipe.execute()
        return True

    def evaluation(self, job_id: str) -> dict[str, Any] | None:
        raw = self.r.get(job_part(job_id, FIGURES_PART))
        return None if raw is None else orjson.loads(raw)

    def packed_rows(self, job_id: str) -> Iterator[bytes]:
        """The panel's packed row sets in date order, a few at a time (never all in memory)."""
        key = job_part(job_id, ROWS_PART)
        start = 0
        while True:
            rows = self.r.lrange(key, start, start + DATES_PER_READ - 1)
            if not rows:
                return
            yield from rows
            start += len(rows)

    def discard(self, job_id: str) -> None:
        self.r.delete(
            job_part(job_id, PANEL_PART),
            job_part(job_id, ROWS_PART),
            job_part(job_id, FIGURES_PART),
            job_part(job_id, FORWARD_PART),
        )
