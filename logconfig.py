"""JSON log lines (python-json-logger) for the API and the workers, configured once per process.

Every line about a job carries ``job_id``, ``script_id`` and ``user`` as JSON fields (see
``job_fields``). Code, params and tokens are never logged.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_configured = False


def configure(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines."""
    global _configured  # noqa: PLW0603 - logging is process-wide; configure it once
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    _configured = True


def job_fields(
    job_id: str, *, script_id: int | None = None, user: str | None = None, **more: Any
) -> dict[str, Any]:
    """The ``extra`` of a log record about a job."""
    return {"job_id": job_id, "script_id": script_id, "user": user, **more}
