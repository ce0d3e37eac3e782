"""Every main screen at five screen sizes in the three languages (issue 12, point 7), in one
headless Chromium: no horizontal scrolling, no control outside the viewport, no clipped or
wrapped text in the header; the kiosk's Finish stays in the header row, doctors' names are
whole, the portrait kiosk (1080x1920) uses its height and at 800x480 the keypad is above the
fold. A screenshot of each screen, size and language goes to screenshots/sizes/.

The checks run in the page (one evaluate per screen) and each person signs in once, in a
browser context kept for all sizes, so the whole walk stays within about a minute.
Also here: the kiosk's card reader typing an MRZ (issue 12, point 11) through ui.js.
"""

from __future__ import annotations

import pytest
from helpers.browser import WAIT_MS, type_on_keypad
from helpers.mrz import garble, td1
from helpers.node import AMOXICILLIN
from helpers.ui import SCREENSHOTS  # noqa: F401

from edge_node.services import appointments, prescribing

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("catalogues")]

SIZES = ((800, 480), (1024, 600), (1280, 800), (1920, 1080), (1080, 1920))
LANGUAGES = ("uz", "ru", "en")
PORTRAIT = (1080, 1920)
SMALLEST = (800, 480)
# The portrait kiosk must use its height: the keypad takes at least this share of it.
PORTRAIT_KEYPAD_SHARE = 0.4

# Problems on the page, as short texts; [] when the screen fits.
CHECKS = """() => {
  const W = window.innerWidth, problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== "hidden";
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.split(" ")[0] : "") +
    " '" + (el.innerText || el.value || "").trim().slice(0, 30) + "'";
  if (document.documentElement.scrollWidth > W + 1) {
    problems.push("horizontal scroll: " + document.documentElement.scrollWidth + " > " + W);
  }
  const controls = "a[href], button, input:not([type=hidden]), select, textarea";
  for (const el of document.querySelectorAll(controls)) {
    if (!visible(el) || el.closest("[hidden]")) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.right > W + 1) problems.push("control outside: " + name(el));
  }
  const bar = document.querySelector(".topbar");
  if (bar) {
    const items = [...bar.children].filter(visible);
    const first = Math.min(...items.map((el) => el.getBoundingClientRect().top));
    const shortest = Math.min(...items.map((el) => el.getBoundingClientRect().height));
    for (const el of items) {
      const below = el.getBoundingClientRect().top - first;
      if (below >= shortest) problems.push("header wraps: " + name(el));
    }
  }
  for (const el of document.querySelectorAll(".topbar *, .subbar *, h1, .page-head *")) {
    if (!visible(el) || el.children.length) continue;
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== "visible") {
      problems.push("clipped: " + name(el));
    }
    const lines = el.getClientRects().length;
    if (el.closest(".topbar") && lines > 1) problems.push("header text on 2 lines: " + name(el));
  }
  for (const el of document.querySelectorAll("[data-doctor-name]")) {
    if (el.scrollWidth > el.clientWidth + 1) problems.push("doctor's name cut: " + name(el));
  }
  return problems;
}"""

KEYPAD = """() => {
  const H = window.innerHeight;
  const keys = [...document.querySelectorAll(".keys .key, button[name='next']")];
  const box = document.querySelector(".keys").getBoundingClientRect();
  return {below: keys.filter((k) => k.getBoundingClientRect().bottom > H + 1).length,
          share: box.height / H};
}"""


def sign_in(page, live: str, username: str, pin: str) -> None:  # noqa: F811
    page.goto(f"{live}/ui/desk/sign-in")
    page.fill("#username", username)
    page.fill("#pin", pin)
    page.click("button[type='submit']")
    page.wait_for_url("**/ui/**")


def kiosk_in(page, live: str, person: dict) -> None:  # noqa: F811
    page.goto(f"{live}/ui/kiosk/identify")
    type_on_keypad(page, person["pinfl"])
    page.click("button[name='next']")
    page.wait_for_url("**/ui/kiosk/verify")
    type_on_keypad(page, person["document"][-4:])
    page.click("button[name='next']")
    page.wait_for_url("**/ui/kiosk/home")


def test_main_screens_fit_every_size_in_every_language(browser, live, store, pinned,  # noqa: F811
                                                       actor_for, clinic_credentials, app):
    app.config["KIOSK_IDLE_SECONDS"] = 3600  # the walk takes longer than a kiosk session
    person = pinned["patient"]
    appointments.book(store, actor_for("registrar"), patient_id=person["patient_id"],
                      practitioner_id=pinned["doctor_id"], starts_at=pinned["slot"],
                      channel="kiosk", now=pinned["now"])
    issued = prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                            patient_id=person["patient_id"],
                                            items=[AMOXICILLIN])
    patient_url = f"/ui/desk/patients/{person['patient_id']}"
    # who: (how they start, {screen name: address}); one browser context each
    people = {
        "kiosk": (lambda p: None, {"kiosk-start": "/ui/kiosk/",
                                   "kiosk-identify": "/ui/kiosk/identify"}),
        "patient": (lambda p: kiosk_in(p, live, person),
                    {"kiosk-home": "/ui/kiosk/home", "kiosk-doctors": "/ui/kiosk/book",
                     "kiosk-slots": f"/ui/kiosk/book/{pinned['doctor_id']}"}),
        "registrar": (lambda p: sign_in(p, live, "registrar", "1111"),
                      {"desk-home": "/ui/desk/", "desk-find": "/ui/desk/patients?q=nazarova",
                       "desk-register": "/ui/desk/patients/new", "desk-patient": patient_url}),
        "pharmacist": (lambda p: sign_in(p, live, "pharmacist", "3333"),
                       {"counter-scan": "/ui/counter/",
                        "counter-lookup": f"/ui/counter/lookup?q={person['pinfl']}"}),
        "doctor": (lambda p: sign_in(p, live, "doctor", "2222"),
                   {"prescribe": f"{patient_url}/prescribe",
                    "prescription": f"/ui/desk/prescriptions/{issued['prescription_id']}"}),
    }
    out = SCREENSHOTS / "sizes"
    out.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    errors: list[str] = []
    for enter, urls in people.values():
        context = browser.new_context(viewport={"width": 1024, "height": 600})
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        enter(page)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            for lang in LANGUAGES:
                for screen, url in urls.items():
                    sep = "&" if "?" in url else "?"
                    # ui.js is deferred behind ui.css: at DOMContentLoaded the layout is final
                    page.goto(f"{live}{url}{sep}lang={lang}", wait_until="domcontentloaded")
                    where = f"{screen} {width}x{height} {lang}"
                    found = page.evaluate(CHECKS)
                    if screen == "kiosk-identify" and (width, height) in (SMALLEST, PORTRAIT):
                        keypad = page.evaluate(KEYPAD)
                        if keypad["below"]:
                            found.append(f"{keypad['below']} keypad keys below the fold")
                        if (width, height) == PORTRAIT and \
                                keypad["share"] < PORTRAIT_KEYPAD_SHARE:
                            found.append(f"keypad uses {keypad['share']:.0%} of the height")
                    if found:
                        problems[where] = found
                    # JPEG: a fifth of PNG's encoding time, and small enough to keep
                    page.screenshot(path=str(out / f"{screen}-{width}x{height}-{lang}.jpg"),
                                    type="jpeg", quality=70)
        context.close()
    report = "\n".join(f"{k}: {v}" for k, v in problems.items())
    (out / "problems.txt").write_text(report or "none\n", encoding="utf-8")
    assert problems == {}, report
    assert errors == []


def test_the_kiosk_reads_the_id_card_typed_by_a_reader_under_a_russian_layout(
        browser, live, pinned):  # noqa: F811
    person = pinned["patient"]
    context = browser.new_context(viewport={"width": 1024, "height": 600})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.goto(f"{live}/ui/kiosk/identify")
    page.click("button[data-key='1']")  # the patient's finger was on the keypad
    zone = garble(td1(document=person["document"], pinfl=person["pinfl"]))
    # Key by key as a keyboard-wedge reader sends them (Playwright's keyboard cannot type
    # Cyrillic keys as keydowns, so they are dispatched as the browser would).
    page.evaluate("""(lines) => {
      for (const line of lines) {
        for (const key of [...line, "Enter"]) {
          document.activeElement.dispatchEvent(
            new KeyboardEvent("keydown", {key, bubbles: true, cancelable: true}));
        }
      }
    }""", zone.split("\n"))
    page.wait_for_url("**/ui/kiosk/verify")
    assert page.locator("[data-keypad-display]").input_value() == ""
    context.close()
