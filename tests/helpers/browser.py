"""Helpers of the browser tests (headless Debian chromium driven by Playwright): where the
browser is, the screen size, screenshots, and a patient identifying at the kiosk. The
`browser`, `live` and `page` fixtures are in tests/ui/conftest.py."""

from __future__ import annotations

from pathlib import Path

from helpers.ui import SCREENSHOTS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
VIEWPORT = {"width": 1024, "height": 600}
WAIT_MS = 10_000  # generous for a loaded CI machine; a passing step takes milliseconds


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def type_on_keypad(page, digits: str) -> None:
    for digit in digits:
        page.click(f"button[data-key='{digit}']")


def kiosk_identify(page, live: str, person: dict, lang: str = "uz", screens: bool = False):
    page.goto(f"{live}/ui/kiosk/")
    if screens:
        shot(page, "kiosk-1-start")
    page.click(f"a.btn-lang[lang='{lang}']")
    type_on_keypad(page, person["pinfl"])
    if screens:
        shot(page, "kiosk-2-pinfl")
    page.click("button[name='next']")
    page.wait_for_url("**/ui/kiosk/verify")
    type_on_keypad(page, person["document"][-4:])
    if screens:
        shot(page, "kiosk-3-document")
    page.click("button[name='next']")
    page.wait_for_url("**/ui/kiosk/home")
