"""Exit non-zero with one clear line when Redis cannot be reached (``make run`` calls it)."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import redis


def main(url: str) -> int:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        where = urlsplit(url).hostname or url  # never print a password from the URL
        port = urlsplit(url).port or 6379
        print(
            f"error: Redis at {where}:{port} cannot be reached ({type(exc).__name__}); "
            "start it (or set REDIS_URL) and retry.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"))
