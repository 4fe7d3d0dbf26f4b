"""The worker's session group's niceness: without it, a worker at nice 19 in a session of its
own still competes with the API as an equal.

With autogroup (``/proc/sys/kernel/sched_autogroup_enabled``, on by default in Debian's and
most distributions' kernels), each session is a scheduling group of its own, and groups share
the CPU by the group's niceness, not their processes'. A process's niceness only orders it
within its own session. honcho (``make run``), systemd and ``setsid`` start the worker in a
session of its own, so at nice 19 it still took a large share of the CPU in a burst: measured
with ``bench.load`` (200 clients), the worker used 0.30 s of CPU in the 0.6 s the API took to
answer the submits. With its group at nice 19 too, the API gets the cores first: submit p99
median 689 -> 605 ms and p50 459 -> 385 ms (9 runs each, alternating, on a slow day).

The group is the whole session, so its niceness is only set when the session holds nothing
but the worker: its own processes and the processes that started it (honcho's ``sh -c``).
A worker sharing a session with anything else (an API started by the same shell script, a
terminal) keeps its group as it is; there, the processes' own niceness already orders them.
Under a cgroup with the CPU controller (systemd's services, containers), the kernel does not
use autogroups; weigh the cgroups there (``CPUWeight=``, ``cpu.weight``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

AUTOGROUP = Path("/proc/self/autogroup")


def lower_session_priority(niceness: int) -> bool:
    """Make this process's session group at least ``niceness`` nice if the session is the
    worker's alone (see the module's docstring); answer whether the group is now that nice."""
    niceness = max(0, min(niceness, 19))
    current = autogroup_niceness()
    if current is None:
        return False  # no autogroups on this kernel: the process's niceness is what counts
    if current >= niceness:
        return True
    strangers = session_strangers(os.getpid())
    if strangers:
        log.info(
            "session shared: its scheduling group keeps its niceness",
            extra={"others": sorted(strangers)[:5]},
        )
        return False
    try:
        AUTOGROUP.write_text(str(niceness))
    except OSError as exc:
        log.warning("session niceness not set", extra={"error": str(exc)})
        return False
    return True


def autogroup_niceness() -> int | None:
    """This process's session group's niceness, ``None`` where the kernel has no autogroups."""
    try:
        return int(AUTOGROUP.read_text().split()[-1])  # "/autogroup-42 nice 0"
    except (OSError, ValueError, IndexError):  # (a format we do not know: leave it alone)
        return None


def session_strangers(pid: int) -> set[int]:
    """Processes in ``pid``'s session that are neither ``pid``'s ancestors nor descendants."""
    table = _process_table()
    session = table[pid][1]
    ancestors = _ancestors(pid, table)
    return {
        other
        for other, (_, other_session) in table.items()
        if other_session == session
        and other != pid
        and other not in ancestors
        and pid not in _ancestors(other, table)
    }


def _ancestors(pid: int, table: dict[int, tuple[int, int]]) -> set[int]:
    """``pid``'s parent, its parent's parent, and so on, as far as ``table`` knows them."""
    found: set[int] = set()
    parent = table[pid][0]
    while parent in table and parent not in found:
        found.add(parent)
        parent = table[parent][0]
    return found


def _process_table() -> dict[int, tuple[int, int]]:
    """Every process's parent and session, from /proc (processes gone meanwhile are left out)."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[3]))  # ppid, session
    return table
