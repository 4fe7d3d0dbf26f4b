"""Instructions one ``POST /execute`` costs the API process: the figure noise does not move.

    REDIS_URL=redis://127.0.0.1:6379/13 python -m bench.submit_instructions [--submits 60]

``bench.submit_cost``'s CPU per submit moved by ±30% between runs of the same code on this
shared machine, more than most changes to the submit path are worth. ``valgrind --tool=callgrind``
counts instructions instead, which do not depend on what else the machine is doing. With a
fixed hash seed and 60 submits, two runs of the same code agreed within 0.3% (with random
seeds and 30 submits, up to 10% apart): the token lookup on a driver connection measured
4.28 and 4.29 M instructions per submit before, 3.94 and 3.93 M after. It runs the same
in-process submits as ``bench.submit_cost``, once with none and once with ``--submits``, after
the same warm-up, and prints the difference per submit, so start-up and warm-up cancel out.
About 50 times slower than a plain run: 60 submits take a few minutes. Needs valgrind and
the Redis and database of REDIS_URL / DATABASE_URL (jobs stay queued: use a scratch Redis
database). Compare two versions by running each a few times.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

from settings import PROJECT_ROOT

WARM_UP = 10


def instructions(submits: int) -> int:
    """Instructions a whole process takes to warm up and then send ``submits`` submits."""
    callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    done = subprocess.run(
        [*callgrind, sys.executable, "-m", "bench.submit_instructions", "--run", str(submits)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same hashes, so the same work
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the run under callgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def run(submits: int) -> None:
    """What runs under callgrind."""
    from bench.submit_cost import prepared_submit

    submit = prepared_submit()
    for _ in range(WARM_UP + submits):
        submit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--submits", type=int, default=60)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # (the run under callgrind)
    args = parser.parse_args()
    if args.run is not None:
        run(args.run)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (Debian: apt install valgrind)")
    baseline, measured = instructions(0), instructions(args.submits)
    per_submit = (measured - baseline) / args.submits
    print(f"instructions per submit: {per_submit / 1e6:.2f} M ({args.submits} submits)")


if __name__ == "__main__":
    main()
