"""HTTP to the service: the token, JSON, typed errors, and retries on 429/503 (Retry-After)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypedDict

import requests

from calc_client.errors import CalcError, error_for

PREFIX = "/api/custom-calculations"
RETRY_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the service sends whole seconds; dates are not used)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class TransportOptions(TypedDict, total=False):
    """The options of ``Transport`` a ``Client`` takes and passes on, so their defaults stand
    in one place (``Transport.__init__``); ``backoff`` and ``sleep`` stay the transport's."""

    timeout: float
    retries: int
    max_wait: float
    session: requests.Session | None


class Transport:
    """One ``requests.Session`` to one service.

    ``retries`` more tries after a 429 or 503 (or a connection error on a request that is safe
    to repeat: every GET/DELETE, and a submit, which carries an ``Idempotency-Key``), each
    after the answer's ``Retry-After`` (at most ``max_wait`` seconds), else ``backoff`` doubled
    each time.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.session = session or requests.Session()
        self.sleep = sleep
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return f"{self.base}{PREFIX}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        repeatable: bool | None = None,
        accept: str = "application/json",
    ) -> requests.Response:
        """The answer of a 2xx request; a ``CalcError`` subclass for an error answer."""
        safe = method in ("GET", "DELETE", "PUT") if repeatable is None else repeatable
        wait = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.request(
                    method,
                    self.url(path),
                    json=json,
                    params=params,
                    headers={"Accept": accept, **(headers or {})},
                    timeout=self.timeout,
                )
            except requests.ConnectionError as exc:
                if not safe or last:
                    raise CalcError(
                        f"the service at {self.base} cannot be reached: {exc}",
                        type="ConnectionError",
                    ) from exc
                self.sleep(min(wait, self.max_wait))
                wait *= 2
                continue
            if response.ok:
                return response
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            if response.status_code in RETRY_STATUSES and not last:
                self.sleep(min(retry_after if retry_after is not None else wait, self.max_wait))
                wait *= 2
                continue
            raise _error(response, retry_after)
        raise AssertionError("unreachable")  # the loop returns or raises on its last try

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 else response.json()


def _error(response: requests.Response, retry_after: float | None) -> CalcError:
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    return error_for(response.status_code, envelope, retry_after, response.reason or "error")
