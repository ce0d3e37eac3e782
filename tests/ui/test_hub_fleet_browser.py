"""The hub's fleet pages in headless Chromium (Debian's chromium, Playwright): a staff member
signs in, sees the overview, a region, a node and the conflicts in Uzbek, Russian and
English (screenshots to screenshots/), and the page's own refresh keeps its filters. No
script runs on these pages (the CSP forbids it): a CSP refusal would show as a console error.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from helpers.hub import SimNode
from helpers.hub_app import CENTRAL_LOGIN, PASSWORD, add_central_staff, hub_app_for
from helpers.ui import SCREENSHOTS
from werkzeug.serving import make_server

from central_hub.composition import open_storage

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1280, "height": 900}
WAIT_MS = 10_000


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run installs it with apt-get")
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory, world):
    """A seeded hub (two regions, one over-dispensing conflict) on a real server; the refresh
    is one second here so the test sees it happen."""
    path = tmp_path_factory.mktemp("fleet") / "hub.db"
    storage = open_storage(f"sqlite:///{path}")
    app = hub_app_for(storage, world, DASHBOARD_REFRESH_SECONDS=1)
    add_central_staff(storage)
    sims = [SimNode(cred, app.test_client()) for cred in
            (world.pki.clinic, world.pki.pharmacy, world.sam_pharmacy)]
    for sim in sims:
        sim.register_facility()
    clinic, pharmacy = sims[0], sims[1]
    rx = clinic.prescribe(clinic.register_patient(), clinic.register_practitioner())
    pharmacy.dispense(rx)
    pharmacy.dispense(rx)
    for sim in sims:
        assert sim.push().status_code == 200 and sim.pull().status_code == 200
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fleet-test", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", clinic.node_id
    server.shutdown()
    thread.join(timeout=5)
    storage.close()


@pytest.fixture
def page(browser, hub_url):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    base, _node = hub_url
    tab.goto(f"{base}/staff/sign-in")
    tab.fill("input[name=login]", CENTRAL_LOGIN)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{base}/dashboard")
    yield tab
    context.close()
    assert errors == [], errors


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize(("lang", "words"), [
    ("uz", ("Hududlar", "Ziddiyatlar tushuntirish bilan", "Sinxronlash tarixi")),
    ("ru", ("Регионы", "Конфликты с пояснениями", "История синхронизации")),
    ("en", ("Regions", "Conflicts in words", "Sync history")),
])
def test_overview_region_node_and_conflicts_in_each_language(page, hub_url, lang, words):
    base, node = hub_url
    page.goto(f"{base}/dashboard/fleet/?lang={lang}")
    assert page.locator("#regions tr#region-TAS").is_visible()
    assert words[0] in page.content()
    assert page.locator("#chart-events svg").count() == 1
    shot(page, f"hub-fleet-overview-{lang}")
    page.click("#region-TAS a")
    page.wait_for_url("**/dashboard/fleet/region/TAS*")
    assert page.locator("#nodes tr[id^=node-]").count() == 2
    shot(page, f"hub-fleet-region-{lang}")
    page.click(f"a[href*='/dashboard/fleet/node/{node}']")
    page.wait_for_url(f"**/dashboard/fleet/node/{node}*")
    assert words[2] in page.content() and page.locator("#attempts tr").count() >= 3
    shot(page, f"hub-fleet-node-{lang}")
    page.goto(f"{base}/dashboard/fleet/conflicts?lang={lang}")
    assert words[1] in page.content()
    assert page.locator("section.conflict").count() == 1
    shot(page, f"hub-fleet-conflict-{lang}")


def test_the_refresh_keeps_the_filters(page, hub_url):
    base, _node = hub_url
    page.goto(f"{base}/dashboard/fleet/conflicts?lang=en")
    page.select_option("#f-region", "TAS")
    page.select_option("#f-kind", "over_dispensing")
    page.select_option("#f-state", "open")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**kind=over_dispensing**")
    first = page.text_content("#updated")
    with page.expect_navigation(timeout=WAIT_MS):
        pass  # the meta refresh (one second in this test)
    page.wait_for_load_state()
    assert page.input_value("#f-region") == "TAS"
    assert page.input_value("#f-kind") == "over_dispensing"
    assert page.input_value("#f-state") == "open"
    assert page.locator("section.conflict").count() == 1
    assert page.text_content("#updated") is not None and first is not None
