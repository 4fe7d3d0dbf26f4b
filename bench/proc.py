"""CPU processes have used so far, read from ``/proc`` (any process, not only our children)."""

from __future__ import annotations

import os
from collections.abc import Iterator

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


# Who shares the machine in a benchmark, by what their command line holds (first match wins).
SERVICE_GROUPS = (
    ("api", (b"gunicorn",)),
    ("sandbox", (b"sandbox.zygote",)),  # the fork servers and the children they fork
    ("worker", (b"celery",)),
    ("redis", (b"redis-server",)),
    ("database", (b"postgres",)),
)


def cpu_by_group(
    groups: tuple[tuple[str, tuple[bytes, ...]], ...] = SERVICE_GROUPS,
) -> dict[str, float]:
    """CPU so far of every process in each group, with the children it has waited for: two
    readings apart give what each group spent between them, short-lived children included
    (a sandbox child alive at the first and reaped by the second counts in both readings,
    first in itself and then in its fork server)."""
    totals = dict.fromkeys((name for name, _ in groups), 0.0)
    for pid, command in command_lines():
        for name, markers in groups:
            if any(marker in command for marker in markers):
                totals[name] += cpu_seconds(pid, with_reaped=True)
                break
    return totals


def command_lines() -> Iterator[tuple[int, bytes]]:
    """Every process's id and command line (arguments NUL-separated); those gone meanwhile
    are left out."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                yield int(entry.name), cmdline.read()
        except OSError:
            continue
