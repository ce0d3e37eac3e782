"""The kiosk warns before it ends an idle session (issue 12, point 9), in headless Chromium.

The page's clock is Playwright's fake one, so a minute of idling takes no time: the warning
shows 15 s before the end, counts down, a touch on "I am still here" keeps the session, and
when nobody touches the screen the session ends and the screen is cleared.
"""

from __future__ import annotations

import pytest
from helpers.browser import kiosk_identify
from helpers.ui import translated  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("catalogues")]

IDLE, WARN = 60, 15


def test_the_kiosk_counts_down_before_ending_an_idle_session(page, live, app,  # noqa: F811
                                                           pinned):  # noqa: F811
    app.config.update(KIOSK_IDLE_SECONDS=IDLE, KIOSK_IDLE_WARNING_SECONDS=WARN)
    page.clock.install()
    kiosk_identify(page, live, pinned["patient"], lang="ru")
    warning = page.locator("#idle-warning")
    count = page.locator("[data-idle-count]")
    page.clock.run_for((IDLE - WARN - 1) * 1000)
    assert warning.is_hidden()  # not before its time
    page.clock.run_for(2000)
    assert warning.is_visible()
    assert translated("ru", "Are you still there?") in warning.inner_text()
    assert int(count.inner_text()) in (WARN - 1, WARN)
    page.clock.run_for(5000)
    assert int(count.inner_text()) in (WARN - 6, WARN - 5)  # it counts down, second by second
    page.click("[data-idle-continue]")
    assert warning.is_hidden()
    page.clock.run_for((IDLE - WARN - 1) * 1000)
    assert warning.is_hidden() and page.url.endswith("/ui/kiosk/home")  # the session goes on
    page.clock.run_for((WARN + 2) * 1000)  # nobody touches the screen
    page.wait_for_url("**/ui/kiosk/?ended=1")
    assert page.locator("[data-ended]").is_visible()
