"""The service's global backlog: symbols of every queued or running job, all users together.

Per-user caps (``JobStore.create``'s active limit) keep authenticated users from crowding one
another out; this bound is what keeps the service as a whole from taking more work than its
workers can finish within the wait limits (README, ``CALC_MAX_BACKLOG_SYMBOLS``). A submit that
would take the backlog over the limit is refused (the API's 429) and writes nothing; a job
larger than the limit is still admitted when the backlog is empty, so it is never refused forever.

Keys:

- ``calc:backlog``          sorted set: job id -> when the job must have ended (a stale member,
  a job whose finish was lost, is dropped on the next admit)
- ``calc:backlog:symbols``  hash: job id -> its symbol count
- ``calc:backlog:total``    the sum of that hash, kept by the two scripts below

A job leaves the backlog once (``ZREM`` answers whether it was a member), so the total cannot
drift whatever the order of finish, discard and stale sweeps.
"""

from __future__ import annotations

import redis

from workers.keys import BACKLOG, BACKLOG_SYMBOLS, BACKLOG_TOTAL

KEYS = [BACKLOG, BACKLOG_SYMBOLS, BACKLOG_TOTAL]
STALE_PER_ADMIT = 100  # stale members dropped per admit at most (the rest on later ones)

# ARGV: now, limit ('' for none), job id, symbols, ends by, stale dropped at most.
# Answers 1 (admitted) or 0 (over the limit).
_ADMIT = """
local stales = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[6])
for _, stale in ipairs(stales) do
  redis.call('ZREM', KEYS[1], stale)
  redis.call('DECRBY', KEYS[3], tonumber(redis.call('HGET', KEYS[2], stale) or '0'))
  redis.call('HDEL', KEYS[2], stale)
end
local total = tonumber(redis.call('GET', KEYS[3]) or '0')
if ARGV[2] ~= '' and total > 0 and total + tonumber(ARGV[4]) > tonumber(ARGV[2]) then
  return 0
end
if redis.call('ZADD', KEYS[1], ARGV[5], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
  redis.call('INCRBY', KEYS[3], ARGV[4])
end
return 1
"""

# ARGV: job id. Answers the symbols released (0 when the job was not in the backlog).
_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
local symbols = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DECRBY', KEYS[3], symbols)
return symbols
"""


class BacklogFull(Exception):
    """Admitting the job would take the service's backlog over its limit."""

    def __init__(self, limit: int):
        super().__init__(f"the service has {limit} symbols queued or running; try again shortly")
        self.limit = limit


class Backlog:
    """Admits jobs into, and releases them from, the global backlog (see the module)."""

    def __init__(self, client: redis.Redis):
        self.r = client
        self._admit = client.register_script(_ADMIT)
        self._release = client.register_script(_RELEASE)

    def admit(
        self, job_id: str, symbols: int, *, limit: int | None, ends_by: float, now: float
    ) -> None:
        """Count the job in; ``BacklogFull`` (nothing written) if that would pass ``limit``
        (``None``: counted, never refused, as for the scheduler's runs)."""
        args = [repr(now), "" if limit is None else limit, job_id, max(1, symbols), repr(ends_by)]
        args.append(STALE_PER_ADMIT)
        if not self._admit(keys=KEYS, args=args):
            raise BacklogFull(limit or 0)

    def release(self, job_id: str, *, client: redis.Redis | None = None) -> None:
        """Count the job out (once; again is a no-op). ``client`` may be a pipeline."""
        self._release(keys=KEYS, args=[job_id], client=client or self.r)

    def total(self) -> int:
        return int(self.r.get(KEYS[2]) or 0)
