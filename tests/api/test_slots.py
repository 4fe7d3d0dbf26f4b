"""Request slots: a few requests of a process run at once, long polls wait outside them."""

from __future__ import annotations

import threading
import time

from api.slots import RequestSlots
from tests.api.helpers import BASE


def run_in_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)


def test_at_most_count_requests_run_at_once():
    slots = RequestSlots(2, overflow_seconds=10)
    lock = threading.Lock()
    running, most = 0, 0

    def app(environ, start_response):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return [b"ok"]

    wrapped = slots.middleware(app)
    run_in_threads(8, lambda: wrapped({}, None))
    assert most == 2
    assert not slots.holds()


def test_a_released_slot_lets_others_run_while_the_holder_waits():
    slots = RequestSlots(1, overflow_seconds=10)
    waiting, others_ran = threading.Event(), threading.Event()

    def long_poll(environ, start_response):
        with slots.released():
            waiting.set()
            assert others_ran.wait(5)
        assert slots.holds()  # its slot is back before it answers
        return [b"done"]

    def quick(environ, start_response):
        others_ran.set()
        return [b"quick"]

    poller = threading.Thread(target=lambda: slots.middleware(long_poll)({}, None))
    poller.start()
    assert waiting.wait(5)
    assert slots.middleware(quick)({}, None) == [b"quick"]
    poller.join(5)
    assert not poller.is_alive()


def test_a_request_that_cannot_get_a_slot_in_time_runs_anyway():
    slots = RequestSlots(1, overflow_seconds=0.1)
    release = threading.Event()
    stuck = threading.Thread(
        target=lambda: slots.middleware(lambda e, s: [release.wait(5) and b""])({}, None)
    )
    stuck.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert slots.middleware(lambda e, s: [b"late"])({}, None) == [b"late"]
    assert time.monotonic() - started < 1
    release.set()
    stuck.join(5)


def test_a_submit_waiting_for_its_job_does_not_hold_back_other_requests(settings, make_app):
    """One slot, no worker: a submit with ``wait`` sits until it runs out, and meanwhile
    other requests of the same process are answered at once."""
    app = make_app(settings.with_overrides(api_active_requests=1))
    answers: dict[str, object] = {}

    def long_poll():
        client = app.test_client()
        body = {"script": "result = 1", "symbols": ["AAPL"], "wait": 3}
        answers["poll"] = client.post(f"{BASE}/execute", json=body).status_code

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.5)  # the poll is waiting for its job now
    started = time.monotonic()
    response = app.test_client().post(f"{BASE}/validate", json={"code": "result = 1"})
    elapsed = time.monotonic() - started
    poller.join(10)
    assert response.status_code == 200
    assert elapsed < 1.0  # not held until the poll's 3 seconds run out
    assert answers["poll"] == 202  # the job is still queued when the wait runs out
