"""Every Redis key name the service uses, in one place: the stores build none of their own.

A job's keys (all expire with the job, 24 hours by default):

- ``calc:job:{id}``                    hash: the spec (code, symbols, params, ...) and the status
- ``calc:job:{id}:results``            hash: symbol -> outcome JSON, each written once
- ``calc:job:{id}:finish``             string: set once (``SET NX``) by whoever finishes the job
- ``calc:job:{id}:tries``              hash: chunk number -> deliveries
- ``calc:job:{id}:done``               pub/sub channel: a message when the job finishes
- ``calc:job:{id}:panel``              hash: an evaluation's runs (``workers.panel``)
- ``calc:job:{id}:rows``               list: an evaluation's panel as CSV blocks
- ``calc:job:{id}:forward``            hash: symbol -> its forward returns (``workers.forward``)
- ``calc:job:{id}:evaluation``         string: an evaluation's figures
- ``calc:job:{id}:evaluation:claim``   string: who computes those figures

The service's other keys:

- ``calc:jobs:{owner}``      sorted set: the owner's job ids by creation time
- ``calc:active:{owner}``    sorted set: the owner's queued or running jobs, by when they must
  have ended (the per-owner limit, and how the watchdog finds jobs whose workers died)
- ``calc:idem:{owner}:{sha256 of the key}``  a submit's Idempotency-Key claim
- ``calc:sched:{script}:{zone}:{due}``  a scheduled run's claim
- ``calc:rc:{sha256}``  the result cache; ``calc:index:{sha256}:{version}`` a reference
  index's levels; ``calc:calendar:{sha256}:{version}`` a universe's calendar
  (``workers.calendar_cache``); ``calc:metrics:*`` the job counters
- ``calc:workers``, ``calc:sandbox``  the workers' heartbeats and confinement (``workers.health``)
- ``calc:backlog``, ``calc:backlog:symbols``, ``calc:backlog:total``  the global backlog
- ``calc:fair:owners``, ``calc:fair:q:{owner}``, ``calc:fair:lease:{token}``  the fair queue
"""

from __future__ import annotations

import hashlib

PREFIX = "calc"
# An evaluation's keys beside its job (workers/panel.py), for ``job_part``: its runs, its
# panel's CSV rows, its figures, the claim of whoever makes the figures (from then on the
# panel takes no more runs), and its symbols' forward returns as the chunks stored them.
# Named once here, so the stores and the job view cannot disagree.
PANEL_PART, ROWS_PART, FIGURES_PART = "panel", "rows", "evaluation"
FIGURES_CLAIM_PART, FORWARD_PART = "evaluation:claim", "forward"
EVALUATION_PARTS = (PANEL_PART, ROWS_PART, FIGURES_PART, FIGURES_CLAIM_PART, FORWARD_PART)


def owner_key(owner: str | None) -> str:
    """The owner as it stands in key names and records (anonymous is the empty string)."""
    return owner or ""


def job_key(job_id: str) -> str:
    """The job's record."""
    return f"{PREFIX}:job:{job_id}"


def job_part(job_id: str, part: str) -> str:
    """One of the keys beside a job's record (``results``, ``panel``, ...; see the module)."""
    return f"{job_key(job_id)}:{part}"


def calendar_key(universe_sha256: str, version: int) -> str:
    """A universe's calendar at a market-data version (``workers.calendar_cache``)."""
    return f"{PREFIX}:calendar:{universe_sha256}:{version}"


def owner_index(owner: str | None) -> str:
    return f"{PREFIX}:jobs:{owner_key(owner)}"


def active_set(owner: str | None) -> str:
    return f"{PREFIX}:active:{owner_key(owner)}"


ACTIVE_SETS = f"{PREFIX}:active:*"  # every owner's active set (the watchdog's scan)


def idempotency_key(owner: str | None, key: str) -> str:
    """A hash of the client's key, so any string the client sends makes a tidy name."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}:idem:{owner_key(owner)}:{digest}"


def schedule_claim_key(script_id: int, due: str) -> str:
    return f"{PREFIX}:sched:{script_id}:{due}"


def result_cache_key(digest: str) -> str:
    return f"{PREFIX}:rc:{digest}"


def reference_index_key(digest: str, version: int) -> str:
    return f"{PREFIX}:index:{digest}:{version}"


def metrics_key(name: str) -> str:
    return f"{PREFIX}:metrics:{name}"


WORKERS = f"{PREFIX}:workers"  # sorted set: worker node -> time of its last heartbeat
SANDBOX = f"{PREFIX}:sandbox"  # hash: worker node -> the confinement its pool processes got

BACKLOG = f"{PREFIX}:backlog"  # sorted set: job id -> when the job must have ended
BACKLOG_SYMBOLS = f"{BACKLOG}:symbols"  # hash: job id -> its symbol count
BACKLOG_TOTAL = f"{BACKLOG}:total"  # the sum of that hash

FAIR_RING = f"{PREFIX}:fair:owners"  # list: the owners with entries waiting, round-robin
FAIR_QUEUES = f"{PREFIX}:fair:q:"  # the owners' lists: this prefix and the owner


def fair_queue_key(owner: str | None) -> str:
    return f"{FAIR_QUEUES}{owner_key(owner)}"


def fair_lease_key(token: str) -> str:
    return f"{PREFIX}:fair:lease:{token}"
