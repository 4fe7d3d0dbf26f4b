"""Each API process on a CPU of its own (``CALC_API_PIN_CPUS``, on by default).

A gunicorn gthread process hands every request from thread to thread: the poller thread reads
it, a pool thread answers it and gives the connection back, and the GIL changes hands each
time a thread waits on Redis or the database. Threads on different CPUs wake each other with
inter-processor interrupts, which on a virtual machine are exits to the hypervisor; on one
CPU a wake-up is a plain switch. The GIL runs one process's Python on one CPU at a time
anyway, so tying a process and all its threads to one CPU costs it little. Here it cut the
API's CPU in a 200-client burst by a fifth and the submits' p99 by a third (``bench.load``,
12 runs each way: 0.32 -> 0.25 s, 240 -> 157 ms).

gunicorn's master picks the CPU as it forks a process: the allowed CPU that the fewest live
processes have (``pre_fork``), so a process that replaces a dead one takes the CPU it left.
The new process pins itself before it starts a thread (``post_fork``); threads inherit it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable

log = logging.getLogger(__name__)


def least_used_cpu(allowed: Iterable[int], taken: Iterable[int | None]) -> int:
    """The CPU of ``allowed`` that the fewest of ``taken`` (other processes' CPUs) hold; the
    lowest numbered one among equals."""
    holders = Counter(cpu for cpu in taken if cpu is not None)
    return min(sorted(allowed), key=lambda cpu: holders[cpu])


def cpu_for_new_process(live_cpus: Iterable[int | None]) -> int | None:
    """The CPU a process forked now should pin itself to, or None when this process may only
    run on one CPU anyway (nothing to choose)."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        return None
    return least_used_cpu(allowed, live_cpus)


def pin_this_process(cpu: int | None) -> None:
    """Run this process, and every thread it starts from now on, on ``cpu`` alone."""
    if cpu is None:
        return
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:  # a CPU gone offline, or a sandbox that forbids it: run unpinned
        log.warning("could not pin the API process to CPU %d: %s", cpu, exc)
