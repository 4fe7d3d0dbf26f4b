"""A real Chromium (Debian's ``chromium``) driven by Playwright, for the page's tests.

``playwright install`` is never needed: the browser is the system's (``.ci/run`` installs it).
Every request the page makes is routed through a check that lets only the service's own
origin through and records (and refuses) anything else.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@dataclass
class PageSession:
    """One browser tab on the service, with what it tried to fetch elsewhere."""

    page: object
    origin: str
    shots: Path
    outside: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def launch(playwright):
    args = ["--disable-dev-shm-usage"]
    if os.geteuid() == 0:  # Chromium refuses its own sandbox as root (CI containers)
        args.append("--no-sandbox")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args)


def open_page(browser, origin: str, shots: Path, *, width: int = 1280, height: int = 800):
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True
    )
    session = PageSession(page=None, origin=origin, shots=shots)

    def guard(route) -> None:
        url = route.request.url
        if url.startswith(origin + "/") or url == origin:
            session.seen.append(url)
            route.continue_()
        else:
            session.outside.append(url)
            route.abort()

    context.route(re.compile(r".*"), guard)
    page = context.new_page()
    page.on("pageerror", lambda exc: session.errors.append(str(exc)))
    session.page = page
    return context, session


@contextmanager
def page_at(
    browser, origin: str, shots: Path, *, width: int = 1280, height: int = 800
) -> Iterator[PageSession]:
    """A fresh page opened at ``origin``, closed after; then, unless the body failed, that it
    asked nothing outside the service and threw no error."""
    context, session = open_page(browser, origin, shots, width=width, height=height)
    try:
        session.page.goto(origin + "/")
        yield session
    finally:
        context.close()
    assert session.outside == [] and session.errors == []
