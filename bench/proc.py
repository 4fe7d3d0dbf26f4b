"""CPU a process has used so far, read from ``/proc`` (any process, not only our children)."""

from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, with_reaped: bool = False) -> float:
    """User plus system CPU of ``pid`` (0 when it is gone); ``with_reaped`` adds that of the
    children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11 : 15 if with_reaped else 13]) / _TICKS
