"""Where process isolation's cost goes: CPU per 100-symbol chunk, by process, with both cores
busy as in a 200-symbol job (two worker processes, each running chunks back to back).

    python -m bench.isolation_cpu [--chunks 60] [--size 100] [--gap-ms 0]

Runs the same chunk (real bars, packed as the window cache hands them out) in two processes
at once, first in process (the benchmark-only stand-in for the worker before isolation),
then isolated, and prints for each: the median wall time per chunk and the CPU per chunk of
the worker process, of its sandbox children and of its fork server (which forks each child
through a short-lived intermediate). CPU time is steadier than wall time on a shared machine:
compare runs by it. ``--gap-ms`` pauses between chunks, as between jobs that come one at a
time: the fork server then makes the next child while no chunk runs. Needs only the database
of DATABASE_URL (``bench.prepare_data``). This is the isolation benchmark: it replaced
``bench.ab_isolation``, which patched a worker to run 200-symbol jobs both ways over HTTP and
answered the same question with a service to start and ±15% of noise per round.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time

from bench.common import cpu_seconds, packed_items, universe
from bench.workload import SCRIPTS
from sandbox.executor import Limits, run_batch, run_batch_in_process, start_isolation
from sandbox.isolation import fork_server


def _fork_server_cpu() -> float:
    """The fork server's CPU so far, with its reaped intermediates'."""
    return cpu_seconds(fork_server().process.pid, with_reaped=True)


def _cpu(isolated: bool) -> tuple[float, float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # our children: we are their reaper
    return (
        own.ru_utime + own.ru_stime,
        reaped.ru_utime + reaped.ru_stime,
        _fork_server_cpu() if isolated else 0.0,
    )


def one_process(isolated: bool, args: argparse.Namespace, start, results) -> None:
    """A stand-in worker process: the same chunk ``args.chunks`` times, after a warm-up."""
    items = packed_items(*universe(args.size))
    run = run_batch if isolated else run_batch_in_process
    if isolated:
        start_isolation()
    code = SCRIPTS["pure-python"]
    for _ in range(3):
        list(run(code, items, params={}, limits=Limits()))
    start.wait()
    before = _cpu(isolated)
    walls = []
    for _ in range(args.chunks):
        began = time.perf_counter()
        outcomes = list(run(code, items, params={}, limits=Limits()))
        walls.append(time.perf_counter() - began)
        time.sleep(args.gap_ms / 1000)
        assert all(out["error"] is None for _, out in outcomes)
    after = _cpu(isolated)
    per_chunk = [(b - a) / args.chunks for a, b in zip(before, after, strict=True)]
    results.put((statistics.median(walls), *per_chunk))


def measure(isolated: bool, args: argparse.Namespace) -> list[float]:
    """Medians over the two processes: wall, worker CPU, children CPU, fork server CPU."""
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(2), context.Queue()
    processes = [
        context.Process(target=one_process, args=(isolated, args, start, results)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    rows = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    return [statistics.mean(column) * 1000 for column in zip(*rows, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=60)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--gap-ms", type=float, default=0.0)
    args = parser.parse_args()
    print(f"{args.size}-symbol chunks, two processes at once, per chunk (ms):")
    header = ("wall p50", "worker", "children", "fork srv", "total")
    print(f"{'':>11} | {header[0]:>8} | " + " ".join(f"{h:>8}" for h in header[1:]))
    totals = {}
    for isolated in (False, True):
        wall, worker, children, server = measure(isolated, args)
        name = "isolated" if isolated else "in-process"
        totals[name] = worker + children + server
        print(
            f"{name:>11} | {wall:8.1f} | {worker:8.1f} {children:8.1f} {server:8.2f} "
            f"{totals[name]:8.1f}"
        )
    print(f"isolation: {totals['isolated'] / totals['in-process']:.2f}x the CPU per chunk")


if __name__ == "__main__":
    main()
