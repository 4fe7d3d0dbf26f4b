"""The analysts' page in a real Chromium against the real service (gunicorn + prefork workers).

Controls are found by their accessible names (API.md "The playground"), as a screen reader
would; every test's tab refuses and records any request outside the service, and fails on
one. Screenshots of each state go to the run's temporary folder (``screenshots/``).
"""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.browser import CHROMIUM, launch, open_page, page_at
from tests.e2e.conftest import extra_api, make_token

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]
JOB_SECONDS = 120  # this box is shared: a job may wait its turn behind other tests
expect.set_options(timeout=JOB_SECONDS * 1000)
FINISHED = re.compile(r"^Job (completed|failed|timed_out|cancelled)")
MOMENTUM = "result = close[-1] / close[-21] - 1\n"


@pytest.fixture(scope="module")
def chromium():
    with playwright_sync.sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def tab(chromium, live, shots):
    context, session = open_page(chromium, live.url, shots)
    session.page.goto(live.url + "/")
    try:
        yield session
    finally:
        context.close()
    assert session.outside == [], "the page asked for something outside the service"
    assert session.errors == [], "the page raised errors"


def universe(live) -> list[dict]:
    return requests.get(live.api("/universe"), timeout=10).json()["symbols"]


def real_symbols(live, count: int) -> list[str]:
    """``count`` sample symbols spread over the alphabet (every 7th with a sector)."""
    return [s["symbol"] for s in universe(live) if s["sector"]][::7][:count]


def set_code(page, code: str) -> None:
    editor = page.get_by_role("textbox", name="Script", exact=True)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)
    # CodeMirror reads a contenteditable's change from the DOM a moment later: wait for it,
    # as a person would not click Run within those milliseconds either.
    page.wait_for_function("n => window.calcPage.editor.code.length >= n", arg=len(code.strip()))


def editor_text(page) -> str:
    return page.evaluate("() => window.calcPage.editor.code")


def job_status(page):
    return page.get_by_role("status").filter(has_text=re.compile(r"^Job "))


def run(page, symbols: list[str] | None = None) -> str:
    """Click Run and wait for the job to finish; the job's id."""
    if symbols is not None:
        page.get_by_label("Symbols", exact=True).fill(" ".join(symbols))
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        page.get_by_role("button", name="Run", exact=True).click()
    body = answer.value.json()
    assert answer.value.status in (200, 202), body
    expect(job_status(page)).to_have_text(FINISHED)
    return body["job_id"]


def table_rows(page) -> list[dict]:
    """The Results table as a user reads it: symbol, value, error type/message, line."""
    table = page.get_by_role("table", name="Results")
    rows = []
    for row in table.get_by_role("row").all()[1:]:
        headers = row.get_by_role("rowheader").all_inner_texts()
        if not headers:  # a row of print output under its symbol
            continue
        cells = row.get_by_role("cell").all_inner_texts()
        rows.append(
            {
                "symbol": headers[0],
                "value": cells[0],
                "type": cells[1],
                "message": cells[2],
                "line": cells[3],
                "output": cells[4],
            }
        )
    return rows


def api_job(live, job_id: str) -> dict:
    return requests.get(live.api(f"/jobs/{job_id}"), timeout=10).json()


def shown(value: float) -> float:
    """What the page shows for a value: six significant digits."""
    return float(f"{value:.6g}")


def has_route(live, path: str) -> bool:
    doc = requests.get(live.api("/openapi.json"), timeout=10).json()
    return f"/api/custom-calculations{path}" in doc["paths"]


def test_a_syntax_error_is_marked_at_its_line_and_named_in_an_alert(tab):
    page = tab.page
    set_code(page, "x = close[-1]\nresult = (x\n")
    alert = page.get_by_role("alert").filter(has_text="line 2")
    expect(alert).to_contain_text("SyntaxError")
    expect(page.locator(".cm-error-line")).to_contain_text("result = (x")  # the mark's place
    tab.shot("syntax-error")
    set_code(page, "import os\nresult = 1\n")
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_role("alert").filter(has_text="line 1")).to_contain_text("SecurityError")
    expect(page.locator(".cm-error-line")).to_contain_text("import os")
    set_code(page, MOMENTUM)
    expect(page.get_by_role("status").filter(has_text="compiles")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="line")).to_have_count(0)
    tab.shot("syntax-fixed")


def test_code_over_the_limit_is_a_readable_413(tab):
    page = tab.page
    set_code(page, "# " + "x" * 66000 + "\nresult = 1\n")  # a paste over the 64 KiB limit
    expect(page.get_by_role("alert").filter(has_text="too large")).to_contain_text("bytes")
    tab.shot("too-large")


def test_a_run_over_20_real_symbols_shows_the_apis_values(tab, live):
    page = tab.page
    symbols = real_symbols(live, 20)
    set_code(page, MOMENTUM)
    job_id = run(page, symbols)
    expect(job_status(page)).to_have_text(re.compile("^Job completed"))
    expect(page.get_by_role("progressbar")).to_be_hidden()
    tab.shot("run-20")
    job = api_job(live, job_id)
    assert job["status"] == "completed" and len(job["results"]) == 20
    rows = table_rows(page)
    assert [r["symbol"] for r in rows] == symbols  # in the order asked
    for row in rows:
        expected = job["results"][row["symbol"]]
        assert isinstance(expected, float) and math.isfinite(expected)
        assert float(row["value"]) == shown(expected), row
        assert row["type"] == "" and row["message"] == ""
    histogram = page.get_by_role("img", name="Histogram of values")
    expect(histogram).to_be_visible()


def test_sorting_the_error_filter_the_line_and_print_output(tab, live):
    page = tab.page
    symbols = real_symbols(live, 20)
    with_a = [s for s in symbols if s < "B"]
    assert 0 < len(with_a) < len(symbols)
    set_code(
        page,
        'print(symbol, "last close", close[-1])\n'
        "x = close[-1] / close[-21] - 1\n"
        'result = x / 0 if symbol < "B" else x\n',
    )
    job_id = run(page, symbols)
    job = api_job(live, job_id)
    rows = table_rows(page)
    errors = [r for r in rows if r["type"]]
    assert {r["symbol"] for r in errors} == set(with_a)
    assert {(r["type"], r["line"]) for r in errors} == {("ZeroDivisionError", "line 3")}
    assert all(r["message"] == job["errors"][r["symbol"]]["message"] for r in errors)

    page.get_by_role("button", name="Sort by Value").click()
    ascending = [float(r["value"]) for r in table_rows(page) if r["value"]]
    assert ascending == sorted(ascending) and len(ascending) == len(symbols) - len(with_a)
    assert all(not r["value"] for r in table_rows(page)[len(ascending) :])  # errors last
    page.get_by_role("button", name="Sort by Value").click()
    descending = [float(r["value"]) for r in table_rows(page) if r["value"]]
    assert descending == sorted(ascending, reverse=True)
    tab.shot("sorted-descending")
    page.get_by_role("button", name="Sort by Symbol").click()
    assert [r["symbol"] for r in table_rows(page)] == sorted(symbols)

    page.get_by_label("Show", exact=True).select_option(label="Errors only")
    only_errors = table_rows(page)
    assert [r["symbol"] for r in only_errors] == sorted(with_a)
    assert all(r["type"] == "ZeroDivisionError" for r in only_errors)
    tab.shot("errors-only")
    page.get_by_label("Show", exact=True).select_option(label="Values only")
    only_values = table_rows(page)
    assert len(only_values) == len(symbols) - len(with_a)
    assert all(r["value"] and not r["type"] for r in only_values)
    page.get_by_label("Show", exact=True).select_option(label="All rows")

    page.get_by_role("button", name=re.compile(rf"^Go to line 3 \({with_a[0]}\)")).click()
    editor = page.get_by_role("textbox", name="Script", exact=True)
    expect(editor).to_be_focused()
    assert page.evaluate("() => window.calcPage.editor.cm.getCursor().line") == 2  # 0-based

    first = symbols[0]
    page.get_by_role("button", name=f"Show output of {first}").click()
    output = page.get_by_label(f"Output of {first}", exact=True)
    expect(output).to_have_text(job["stdout"][first].rstrip("\n"))
    assert f"{first} last close" in output.inner_text()
    tab.shot("print-output")


def test_cancel_stops_a_running_job(tab, live):
    page = tab.page
    set_code(page, "total = 0\nfor i in range(1000000):\n    total += i\nresult = total\n")
    page.get_by_label("Choose").select_option(value="all")
    assert len(page.get_by_label("Symbols", exact=True).input_value().split()) >= 300
    with page.expect_response(lambda r: r.url.endswith("/execute")) as answer:
        page.get_by_role("button", name="Run", exact=True).click()
    job_id = answer.value.json()["job_id"]
    expect(page.get_by_role("progressbar")).to_be_visible()
    expect(job_status(page)).to_have_text(re.compile(r"^Job running: [1-9]\d* of"))
    tab.shot("running")
    page.get_by_role("button", name="Cancel").click()
    expect(job_status(page)).to_have_text(re.compile("^Job cancelled"))
    expect(page.get_by_role("alert").filter(has_text="cancelled")).to_be_visible()
    tab.shot("cancelled")
    job = api_job(live, job_id)
    assert job["status"] == "cancelled"
    dropped = [s for s, e in job["errors"].items() if e["type"] == "Cancelled"]
    assert dropped and len(dropped) < len(job["results"])  # some ran, the rest were dropped
    page.get_by_label("Show", exact=True).select_option(label="Errors only")
    assert {r["type"] for r in table_rows(page)} >= {"Cancelled"}


def test_save_reload_open_rename_run_last_results_and_delete(tab, live):
    page = tab.page
    name = f"momentum-{uuid.uuid4().hex[:6]}"
    symbols = real_symbols(live, 5)
    set_code(page, MOMENTUM)
    page.get_by_label("Symbols", exact=True).fill(" ".join(symbols))
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description").fill("one-month momentum")
    page.get_by_label("Schedule (cron)").fill("61 25 * * *")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Save failed")).to_contain_text("cron")
    tab.shot("save-bad-cron")
    page.get_by_label("Schedule (cron)").fill("30 22 * * 1-5")
    page.get_by_role("button", name="Save", exact=True).click()
    saved = page.get_by_role("list", name="Saved scripts")
    expect(saved.get_by_role("listitem").filter(has_text=name)).to_contain_text("30 22 * * 1-5")

    page.get_by_role("button", name="New script").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="conflict")).to_be_visible()

    page.reload()
    item = saved.get_by_role("listitem").filter(has_text=name)
    expect(item).to_be_visible()
    set_code(page, "result = 0\n")
    page.get_by_role("button", name=f"Open {name}", exact=True).click()
    assert editor_text(page).strip() == MOMENTUM.strip()
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)
    expect(page.get_by_label("Schedule (cron)")).to_have_value("30 22 * * 1-5")
    tab.shot("saved-opened")

    job_id = run(page)  # the open script's own code: a run of the saved script
    assert api_job(live, job_id)["script_id"] is not None
    page.get_by_role("button", name=f"Last results of {name}").click()
    expect(page.get_by_role("status").filter(has_text="Last run of")).to_be_visible()
    assert [r["symbol"] for r in table_rows(page)] == symbols

    renamed = name + "-r"
    page.once("dialog", lambda dialog: dialog.accept(renamed))
    page.get_by_role("button", name=f"Rename {name}", exact=True).click()
    expect(saved.get_by_role("listitem").filter(has_text=renamed)).to_be_visible()

    page.once("dialog", lambda dialog: dialog.dismiss())  # asked first: nothing deleted
    page.get_by_role("button", name=f"Delete {renamed}", exact=True).click()
    expect(saved.get_by_role("listitem").filter(has_text=renamed)).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {renamed}", exact=True).click()
    expect(saved.get_by_role("listitem").filter(has_text=renamed)).to_have_count(0)
    tab.shot("deleted")
    found = requests.get(live.api("/scripts"), params={"q": renamed}, timeout=10).json()
    assert found["total"] == 0


def test_a_script_deleted_elsewhere_is_a_readable_404(tab, live):
    page = tab.page
    name = f"gone-{uuid.uuid4().hex[:6]}"
    made = requests.post(
        live.api("/scripts"), json={"name": name, "code": MOMENTUM}, timeout=10
    ).json()
    page.reload()
    saved = page.get_by_role("list", name="Saved scripts")
    expect(saved.get_by_role("listitem").filter(has_text=name)).to_be_visible()
    requests.delete(live.api(f"/scripts/{made['id']}"), timeout=10)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {name}", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="not found")).to_contain_text("Delete failed")
    tab.shot("not-found")


def test_download_csv_is_the_export_of_the_run(tab, live):
    if not has_route(live, "/jobs/{job_id}/results.csv"):
        pytest.skip("GET /jobs/{id}/results.csv (w19's export) is not on main yet")
    page = tab.page
    symbols = [*real_symbols(live, 4), "NOPE"]
    set_code(page, MOMENTUM)
    job_id = run(page, symbols)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV", exact=True).click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    job = api_job(live, job_id)
    assert [r["symbol"] for r in rows] == symbols
    for r in rows:
        if r["symbol"] == "NOPE":
            assert r["error_type"] == "UnknownSymbol" and r["value"] == ""
        else:
            assert math.isclose(float(r["value"]), job["results"][r["symbol"]], rel_tol=1e-12)


def test_an_evaluation_draws_both_charts_from_real_data(tab, live):
    if not has_route(live, "/evaluate"):
        pytest.skip("POST /evaluate (w19) is not on main yet")
    page = tab.page
    symbols = real_symbols(live, 20)
    set_code(page, "result = -(close[-1] / close[-21] - 1)\n")
    page.get_by_label("Symbols", exact=True).fill(" ".join(symbols))
    page.get_by_label("Start").fill("2017-01-03")
    page.get_by_label("End").fill("2017-12-29")
    page.get_by_label("Every (trading days)").fill("5")
    page.get_by_label("Horizons").fill("1, 5")
    with page.expect_response(lambda r: r.url.endswith("/evaluate")) as answer:
        page.get_by_role("button", name="Evaluate", exact=True).click()
    assert answer.value.status in (200, 202), answer.value.text()
    job_id = answer.value.json()["job_id"]
    expect(job_status(page)).to_have_text(re.compile("^Job completed"))
    job = api_job(live, job_id)
    figures = job["evaluation"]["horizons"]
    table = page.get_by_role("table", name="Evaluation")
    rows = table.get_by_role("row").all()[1:]
    assert len(rows) == 2
    for row, horizon in zip(rows, ("1", "5"), strict=True):
        assert row.get_by_role("rowheader").inner_text() == f"{horizon} d"
        ic_mean = float(row.get_by_role("cell").first.inner_text())
        assert math.isclose(ic_mean, figures[horizon]["ic_mean"], rel_tol=1e-3, abs_tol=1e-6)
    ic_chart = page.get_by_role("img", name="IC over time")
    expect(ic_chart).to_be_visible()
    dates = sum(1 for _, v in job["evaluation"]["ic_series"]["1"] if v is not None)
    assert dates > 10
    path = ic_chart.locator("path").get_attribute("d")
    assert path.count("L") == dates - 1  # a point per date with an IC
    bars = page.get_by_role("img", name="Quantile returns").locator("rect")
    expect(bars).to_have_count(5)
    tab.shot("evaluation")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download panel CSV").click()
    panel = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(panel) == job["evaluation"]["runs"] or len(panel) > 20 * 10
    assert {"date", "symbol", "value"} <= set(panel[0])


def test_the_page_works_on_a_narrow_window(chromium, live, shots):
    with page_at(chromium, live.url, shots, width=390, height=844) as session:
        page = session.page
        expect(page.get_by_role("textbox", name="Script", exact=True)).to_be_visible()
        set_code(page, MOMENTUM)
        run(page, real_symbols(live, 5))
        wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 1, "the page scrolls sideways on a narrow window"
        session.shot("narrow")


def test_the_page_asks_nothing_outside_the_service(tab, live):
    page = tab.page
    expect(page.get_by_role("list", name="Saved scripts")).to_be_visible()
    set_code(page, MOMENTUM)
    run(page, real_symbols(live, 3))
    assert any("/static/vendor/codemirror" in url for url in tab.seen)
    assert any(url.endswith("/universe") for url in tab.seen)
    assert all(url.startswith(live.url + "/") for url in tab.seen)
    # Were some code of the page to ask elsewhere, its policy refuses before the network.
    refused = page.evaluate("() => fetch('https://example.com/x').then(() => false, () => true)")
    assert refused and tab.outside == []


@pytest.fixture(scope="module")
def live_auth(live, tmp_path_factory):
    """The same service behind a second API with auth required, and a token for it."""
    with extra_api(live, tmp_path_factory.mktemp("auth-web"), CALC_AUTH="required") as url:
        yield url, make_token(live, "page-user")


def test_with_auth_no_token_is_said_plainly_and_a_token_works(chromium, live, live_auth, shots):
    url, token = live_auth
    with page_at(chromium, url, shots) as session:
        page = session.page
        expect(page.get_by_role("alert").filter(has_text="needs a token")).to_contain_text(
            "Token field"
        )
        session.shot("auth-no-token")
        page.get_by_label("Token").fill("not-a-token")
        page.get_by_label("Token").press("Tab")
        set_code(page, MOMENTUM)
        page.get_by_label("Symbols", exact=True).fill("AAPL MSFT")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.get_by_role("alert").filter(has_text="Run failed")).to_contain_text("refused")
        session.shot("auth-bad-token")
        page.get_by_label("Token").fill(token)
        page.get_by_label("Token").press("Tab")
        job_id = run(page)
        expect(job_status(page)).to_have_text(re.compile("^Job completed"))
        assert [r["symbol"] for r in table_rows(page)] == ["AAPL", "MSFT"]
        session.shot("auth-token")
        stored = page.evaluate(
            "() => [sessionStorage.getItem('calc-token'), localStorage.length, document.cookie]"
        )
        assert stored == [token, 0, ""]
        mine = requests.get(
            f"{url}/api/custom-calculations/jobs/{job_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert mine.status_code == 200
        assert (
            requests.get(f"{url}/api/custom-calculations/jobs/{job_id}", timeout=10).status_code
            == 401
        )


@pytest.fixture(scope="module")
def limited_api(live, tmp_path_factory):
    """The same service behind an API that allows one submit a minute."""
    logs = tmp_path_factory.mktemp("limited-web")
    with extra_api(live, logs, CALC_RATE_LIMIT_EXECUTE="1 per minute") as url:
        yield url


def test_a_429_says_when_to_come_back(chromium, live, limited_api, shots):
    with page_at(chromium, limited_api, shots) as session:
        page = session.page
        set_code(page, MOMENTUM)
        run(page, ["AAPL", "MSFT"])
        page.get_by_role("button", name="Run", exact=True).click()
        alert = page.get_by_role("alert").filter(has_text="Run failed")
        expect(alert).to_contain_text("too many requests")
        expect(alert).to_contain_text(re.compile(r"Try again in \d+ s"))
        session.shot("rate-limited")


def test_a_503_is_said_plainly(chromium, live, api_without_redis, shots):
    with page_at(chromium, api_without_redis, shots) as session:
        page = session.page
        set_code(page, MOMENTUM)
        page.get_by_label("Symbols", exact=True).fill("AAPL MSFT")
        page.get_by_role("button", name="Run", exact=True).click()
        alert = page.get_by_role("alert").filter(has_text="Run failed")
        expect(alert).to_contain_text("unavailable right now")
        expect(alert).to_contain_text("try again in a moment")
        session.shot("unavailable")
