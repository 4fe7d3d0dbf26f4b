"""The page at ``/`` and ``GET /universe``, through the Flask app (the browser tests are
tests/e2e/test_page.py): everything the page loads comes from the service itself."""

from __future__ import annotations

import re

import pytest

from settings import PROJECT_ROOT
from tests.api.helpers import BASE, make_token

STATIC = PROJECT_ROOT / "api" / "static"


def references(text: str) -> list[str]:
    """Every URL an HTML, CSS or JS file of the page names (src/href, url(), import ... from)."""
    found = re.findall(r"""(?:src|href)=["']([^"']+)["']""", text)
    found += re.findall(r"""url\(\s*["']?([^"')]+)""", text)
    found += re.findall(r"""(?:import|from)\s*["']([^"']+)["']""", text)
    found += re.findall(r"""https?://[^\s"'<>)]+""", text)
    return found


def test_the_page_is_served_with_a_policy_of_this_service_only(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    html = response.get_data(as_text=True)
    assert 'id="token"' not in html  # auth is off: no Token field
    for url in references(html):
        assert url.startswith("/static/") or url == "data:,", url
        if url.startswith("/static/"):
            asset = client.get(url)
            assert asset.status_code == 200, url
            asset.close()


def test_no_file_of_the_page_names_another_host():
    texts = {
        p.relative_to(STATIC): p.read_text()
        for p in STATIC.rglob("*")
        if p.suffix in {".js", ".css", ".html"} and "vendor" not in p.parts
    }
    texts[PROJECT_ROOT / "api/templates/page.html"] = (
        PROJECT_ROOT / "api" / "templates" / "page.html"
    ).read_text()
    assert texts
    for name, text in texts.items():
        for url in references(text):
            # SVG's namespace is a name, not a request.
            assert not url.startswith(("http:", "https:", "//")) or url.startswith(
                "http://www.w3.org/2000/svg"
            ), (name, url)


def test_the_vendored_editor_carries_its_licence_and_version():
    folder = STATIC / "vendor" / "codemirror-5.65.21"
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert 'version = "5.65.21"' in (folder / "codemirror.js").read_text()
    assert "python" in (folder / "python.js").read_text()


def test_universe_lists_symbols_with_sectors_and_the_date_range(client):
    body = client.get(f"{BASE}/universe").get_json()
    symbols = {s["symbol"]: s for s in body["symbols"]}
    assert len(symbols) == 300
    assert symbols["AAPL"]["sector"] == "Information Technology"
    assert symbols["AAPL"]["name"] == "Apple Inc."
    assert "Information Technology" in body["sectors"]
    assert body["sectors"] == sorted(body["sectors"])
    assert [s["symbol"] for s in body["symbols"]] == sorted(symbols)
    assert body["first_date"] == "2015-11-02" and body["last_date"] == "2018-02-07"


def test_universe_is_in_the_openapi_document(client):
    doc = client.get(f"{BASE}/openapi.json").get_json()
    assert "200" in doc["paths"][f"{BASE}/universe"]["get"]["responses"]


class TestWithAuth:
    @pytest.fixture
    def settings(self, settings):
        return settings.with_overrides(auth="required")

    def test_page_loads_without_a_token_and_has_a_token_field(self, client):
        response = client.get("/")
        assert response.status_code == 200
        assert 'id="token"' in response.get_data(as_text=True)
        asset = client.get("/static/js/main.js")
        assert asset.status_code == 200
        asset.close()

    def test_universe_needs_a_token(self, client, runner):
        assert client.get(f"{BASE}/universe").status_code == 401
        token = make_token(runner, "ana")
        ok = client.get(f"{BASE}/universe", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and len(ok.get_json()["symbols"]) == 300
