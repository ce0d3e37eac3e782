"""Fixtures of the screen tests: headless Chromium (Debian's chromium, Playwright), the node's
app served on loopback for it, and a page that fails its test on any script error or CSP
violation. Skipped only when /usr/bin/chromium is missing outside CI; in CI a missing browser
fails."""

from __future__ import annotations

import os
import threading

import pytest
from helpers.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, WAIT_MS
from werkzeug.serving import make_server


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def live(app, catalogues):
    """The node's app on a real HTTP server on loopback; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="ui-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, locale="uz-UZ")
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # Script errors and CSP refusals count; a 4xx page the test asked for does not.
    tab.on("console", lambda message: errors.append(message.text)
           if message.type == "error" and not message.text.startswith("Failed to load resource")
           else None)
    yield tab
    context.close()
    assert errors == [], errors  # no script error and no CSP violation on any page
