"""Warnings for a script that asked a helper for more history than it was given.

One process runs one script at a time (a sandbox child, or a benchmark), so this run's
warnings are a module-level list: the runner empties it before a run and takes it after.
Scripts cannot reach it (no attribute of a helper is readable, and no module is given).
"""

from __future__ import annotations

# At most this many distinct warnings per run: a script calling helpers in a loop with a
# different window each time must not turn its outcome into a list of them.
MAX_WARNINGS = 10

_warnings: list[str] = []


def take_warnings() -> list[str]:
    """This run's warnings, each once, in the order they first happened; empties the list."""
    taken = list(_warnings)
    _warnings.clear()
    return taken


def short_history(call: str, need: int, size: int) -> None:
    """Note that ``call`` needed ``need`` values of history and got only ``size``."""
    if need <= size:
        return
    message = (
        f"{call} needs at least {need} values of history and was given fewer, so it gives only "
        f"None: a longer `lookback` gives more bars"
    )[:300]  # outcome.MAX_WARNING_LENGTH (a window of a thousand digits is still one line)
    if message not in _warnings and len(_warnings) < MAX_WARNINGS:
        _warnings.append(message)
