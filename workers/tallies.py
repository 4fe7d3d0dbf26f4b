"""A job's tallies (API.md's ``errors_by_type`` and ``warnings``): counted in Redis as each
outcome is first written (by the job store and the panel alike), and read back for the API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The tallies' fields in the job's hash, counted by ``RECORD_WITH_TALLIES``:
# symbols (an evaluation's runs) per error type and per warning, the distinct warnings so far,
# and those past ``MAX_DISTINCT_WARNINGS`` counted together.
TALLY_ERROR = "tally:e:"
TALLY_WARNING = "tally:w:"
TALLY_WARNINGS_DISTINCT = "tally:wn"
TALLY_OTHER_WARNINGS = "tally:w*"
MAX_DISTINCT_WARNINGS = 20


def tallies(fields: dict[str, str]) -> dict[str, Any]:
    """``errors_by_type`` (type -> symbols, most first) and ``warnings`` (each once, with how
    many symbols, or an evaluation's runs, it happened in; most first) from the job's hash."""
    errors: list[tuple[str, int]] = []
    warnings: list[tuple[str, int]] = []
    other = 0
    for name, value in fields.items():
        if not name.startswith("tally:"):
            continue
        if name.startswith(TALLY_ERROR):
            errors.append((name[len(TALLY_ERROR) :], int(value)))
        elif name == TALLY_OTHER_WARNINGS:
            other = int(value)
        elif name.startswith(TALLY_WARNING):
            warnings.append((name[len(TALLY_WARNING) :], int(value)))
    errors.sort(key=lambda pair: (-pair[1], pair[0]))
    warnings.sort(key=lambda pair: (-pair[1], pair[0]))
    listed = [{"message": message, "count": count} for message, count in warnings]
    if other:
        listed.append({"message": "other warnings (more kinds than are listed)", "count": other})
    return {"errors_by_type": dict(errors), "warnings": listed}


# The job's tallies (API.md's ``errors_by_type`` and ``warnings``), counted in the job's own
# hash as each outcome is first written, in the same script: a redelivered chunk, whose
# outcomes are already there, counts nothing twice. Fields: ``tally:e:{type}`` and
# ``tally:w:{message}`` (a count of symbols, or an evaluation's runs), ``tally:wn`` the
# distinct warnings so far; past ``MAX_DISTINCT_WARNINGS`` the rest count in ``tally:w*``.
# An evaluation's panel also gives its figures' claim (KEYS[3]): once the figures are being
# made, or the job has ended (cancelled), it takes no more runs, so that its progress, figures
# and panel agree on what finished.
# KEYS: the outcomes' hash, the job[, the figures' claim]. ARGV: ttl, how many outcomes have
# something to count, then per such outcome its field, its JSON, its error type ('' without)
# and its warnings joined by newlines (''), then per other outcome (most: a value, nothing to
# count) its field and its JSON alone.
RECORD_WITH_TALLIES = f"""
if KEYS[3] then
  local status = redis.call('HGET', KEYS[2], 'status')
  if redis.call('EXISTS', KEYS[3]) == 1
     or (status and status ~= 'queued' and status ~= 'running') then
    return redis.call('HLEN', KEYS[1])
  end
end
local live = redis.call('EXISTS', KEYS[2]) == 1
local plain = 3 + 4 * tonumber(ARGV[2])
for i = 3, plain - 1, 4 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 and live then
    if ARGV[i + 2] ~= '' then
      redis.call('HINCRBY', KEYS[2], '{TALLY_ERROR}' .. ARGV[i + 2], 1)
    end
    for w in string.gmatch(ARGV[i + 3], '[^\\n]+') do
      local f = '{TALLY_WARNING}' .. w
      if redis.call('HEXISTS', KEYS[2], f) == 1 then
        redis.call('HINCRBY', KEYS[2], f, 1)
      elseif redis.call('HINCRBY', KEYS[2], '{TALLY_WARNINGS_DISTINCT}', 0)
             < {MAX_DISTINCT_WARNINGS} then
        redis.call('HINCRBY', KEYS[2], f, 1)
        redis.call('HINCRBY', KEYS[2], '{TALLY_WARNINGS_DISTINCT}', 1)
      else
        redis.call('HINCRBY', KEYS[2], '{TALLY_OTHER_WARNINGS}', 1)
      end
    end
  end
end
for i = plain, #ARGV, 2 do
  redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return redis.call('HLEN', KEYS[1])
"""


def record_args(ttl: int, entries: Iterable[tuple[str, str | bytes, dict[str, Any]]]) -> list[Any]:
    """``RECORD_WITH_TALLIES``'s arguments for (field, stored JSON, outcome) entries: those
    with an error or warnings to count with them, the rest as field and JSON alone."""
    counted: list[Any] = []
    plain: list[Any] = []
    for key, stored, outcome in entries:
        err = outcome.get("error")
        warnings = outcome.get("warnings")
        if not err and not warnings:
            plain += (key, stored)
            continue
        lines = "\n".join(w.replace("\n", " ") for w in warnings or () if isinstance(w, str))
        counted += (key, stored, err.get("type", "") if err else "", lines)
    return [ttl, len(counted) // 4, *counted, *plain]
