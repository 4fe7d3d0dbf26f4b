"""The worst script a user can write makes a bounded answer and bounded Redis growth
(issue 17, item 8): every per-symbol cap counts stored bytes, so a job's answer grows with its
symbols at a known worst rate. Measured before the caps: ~98 KB per symbol, a 42 MB answer
for 500 symbols and ~98 MB of Redis."""

from __future__ import annotations

import pytest

from tests.api.helpers import BASE, run_job, sample_symbols

pytestmark = pytest.mark.usefixtures("celery_worker")

# Every text the script controls at its cap, each character the costliest to store: 4 KiB of
# control characters printed (6 bytes each escaped), 50 keys of 16 control characters,
# warnings from three helpers asked for too much history.
WORST = """\
print('\\x01' * 10000)
x = sma(close, 300)
y = ema(close, 400)
z = rsi(close, 500)
result = {('k%02d' % i) + '\\x01' * 16: 1.2345678901234567e-300 for i in range(50)}
"""
WORST_FAILING = """\
print('\\x01' * 10000)
d = {}
d['\\U0001f600' * 2000] += 1
"""
MAX_ANSWER_BYTES_PER_500 = 8 * 1024 * 1024  # the bound: 500 worst symbols, 8 MB


@pytest.mark.parametrize("script", [WORST, WORST_FAILING], ids=["result", "error"])
def test_the_worst_scripts_answer_and_redis_growth_are_bounded(
    client, redis_client, script: str
) -> None:
    symbols = sample_symbols()
    redis_client.execute_command("MEMORY PURGE")
    before = redis_client.info("memory")["used_memory"]
    job = run_job(client, {"script": script, "symbols": symbols}, timeout=240)
    assert job["status"] == "completed"
    assert job["progress"]["done"] == len(symbols)
    answer = client.get(f"{BASE}/jobs/{job['job_id']}").get_data()
    grown = redis_client.info("memory")["used_memory"] - before
    per_symbol = MAX_ANSWER_BYTES_PER_500 / 500
    assert len(answer) <= per_symbol * len(symbols)
    # Results and the result cache: each outcome is kept about twice, and no more.
    assert grown <= 3 * per_symbol * len(symbols)
    print(f"{len(symbols)} symbols: answer {len(answer) / len(symbols):.0f} B/symbol, "
          f"Redis +{grown / len(symbols):.0f} B/symbol")  # fmt: skip


def test_a_full_redis_refuses_new_jobs_with_a_503_and_reads_go_on(client, redis_client) -> None:
    """Production runs Redis with a maxmemory and ``noeviction`` (README): at the limit a
    submit is a 503 saying Redis is full (not a 500, not "cannot be reached"), and earlier
    jobs can still be read."""
    done = run_job(client, {"script": "result = close[-1]", "symbols": ["AAPL"]})
    limit = redis_client.config_get("maxmemory")["maxmemory"]
    policy = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        redis_client.config_set("maxmemory-policy", "noeviction")
        redis_client.config_set("maxmemory", redis_client.info("memory")["used_memory"] - 1024)
        refused = client.post(f"{BASE}/execute", json={"script": "result = 1", "symbols": ["MSFT"]})
        read = client.get(f"{BASE}/jobs/{done['job_id']}")
    finally:
        redis_client.config_set("maxmemory", limit)
        redis_client.config_set("maxmemory-policy", policy)
    assert refused.status_code == 503
    body = refused.get_json()
    assert body["error"]["type"] == "ServiceUnavailable"
    assert "full" in body["error"]["message"]
    assert refused.headers["Retry-After"]
    assert read.status_code == 200 and read.get_json()["results"] == done["results"]
