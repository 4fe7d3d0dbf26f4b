"""gunicorn's settings for the API (``gunicorn -c gunicorn.conf.py 'api:create_app()'``).

Its numbers come from ``settings`` (``PORT``, ``CALC_API_PROCESSES``, ``CALC_API_THREADS``),
like every other setting; a malformed one refuses to start with one line naming it.

- 2 processes of 32 threads by default: a request with ``wait`` holds its thread for up to 30 s, so
  threads are plentiful; how many of them run at once is bounded by ``api/slots.py``.
- ``reuse_port``: each process listens on a socket of its own and the kernel spreads new
  connections evenly over them. On one shared socket, whichever process woke first took them:
  in a 200-client burst one process took three quarters of the submits while the other idled.
  With SO_REUSEPORT a second server could bind the same port and silently share it (a stale
  one, say), so ``on_starting`` refuses to start when the port is already listened on.
- ``post_worker_init`` warms each new process up (``api/warmup.py``) before it takes requests.
- Idle client connections are kept 75 s, longer than clients and proxies keep theirs
  (typically 15-60 s): with gunicorn's default of 2 s, a client reusing a connection the server
  was closing got "connection reset" on a poll under load.
"""

from __future__ import annotations

import socket

from settings import Settings, SettingsError

try:
    _settings = Settings.from_env()
except SettingsError as exc:  # one line naming the variable, no traceback, a non-zero exit
    raise SystemExit(f"gunicorn: {exc}") from None

bind = [f"0.0.0.0:{_settings.port}"]  # --bind on the command line wins
workers = _settings.api_processes
worker_class = "gthread"
threads = _settings.api_threads
reuse_port = True
keepalive = 75
timeout = 60
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl): two
# servers on one host (two services, a test run beside a running service) shared it, and
# stopping one deleted the other's. Nothing of ours uses it.
control_socket_disable = True


def on_starting(server) -> None:
    """Refuse a port that something already listens on (see the module's docstring)."""
    for address in server.cfg.address:
        if not isinstance(address, tuple):
            continue  # a Unix socket: not shared by SO_REUSEPORT
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # Reusing the address only passes over closed connections (TIME_WAIT) of an
            # earlier run; a socket listening there still makes the bind fail.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise SystemExit(f"gunicorn: cannot listen on {address}: {exc.strerror}") from None


def post_worker_init(worker) -> None:
    """Warm the new process up before it serves (``api/warmup.py``)."""
    from api.warmup import warm_up  # noqa: PLC0415 - read by the master; the app loads per process

    warm_up(worker.wsgi)
