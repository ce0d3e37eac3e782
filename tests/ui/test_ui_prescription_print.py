"""What the printed prescription says (issue 12, points 9 and 13): the clinic's name rather
than its code, the doctor's name, a line for the signature and a place for the stamp, and drug
forms in the reader's language. The QR code's scanning is tested in the browser
(tests/test_ui_browser_print.py)."""

from __future__ import annotations

import re

import pytest
from helpers.ui import staff_sign_in, text_of, translated  # noqa: F401

from edge_node.services import prescribing

pytestmark = pytest.mark.usefixtures("catalogues")

ITEM = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg", "quantity": 20,
        "dosage": "1 kapsula kuniga 3 mahal, 7 kun"}


@pytest.fixture
def issued(store, seeded, actor_for, clinic_credentials):
    patient = seeded["patient_rows"][0]
    return prescribing.issue_prescription(store, actor_for("doctor"), clinic_credentials,
                                          patient_id=patient["patient_id"], items=[ITEM])


def section(html: str, marker: str) -> str:
    """The text of the element carrying `marker` (its first tag to its closing tag)."""
    found = re.search(rf"<(\w+)[^>]*{re.escape(marker)}[^>]*>(.*?)</\1>", html, flags=re.S)
    assert found, marker
    return text_of(found.group(2))


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
@pytest.mark.parametrize("size", ["a5", "a6"])
def test_the_print_names_the_doctor_and_has_signature_and_stamp(client, store, seeded, issued,
                                                                lang, size):
    staff_sign_in(client, "doctor")
    html = client.get(f"/ui/desk/prescriptions/{issued['prescription_id']}"
                      f"?size={size}&lang={lang}").text
    rx = store.one("SELECT practitioner_id, facility_id FROM prescriptions")
    doctor = store.one("SELECT full_name FROM practitioners WHERE practitioner_id = ?",
                       (rx["practitioner_id"],))["full_name"]
    clinic = store.one("SELECT name FROM facilities WHERE facility_id = ?",
                       (rx["facility_id"],))["name"]
    sign = section(html, "data-sign")
    assert doctor in sign
    assert translated(lang, "Doctor's signature") in section(html, "data-signature-line")
    assert translated(lang, "Stamp") in section(html, "data-stamp")
    assert clinic in section(html, 'class="rx-facility"')
    assert rx["facility_id"] not in text_of(html)
    assert translated(lang, "capsule") in text_of(html)


def test_drug_forms_are_translated_in_uzbek_and_russian():
    from kiosk_ui import extract_messages, labels

    assert translated("ru", "tablet") == "таблетки"
    assert translated("uz", "tablet") == "tabletka"
    for lang in ("uz", "ru"):
        catalogue = extract_messages.read_catalogue(extract_messages.UI_CATALOGUE, lang)
        for form in labels.DRUG_FORMS:
            entry = catalogue.get(form)
            assert entry is not None and entry.string and entry.string != form, (lang, form)


def test_every_catalogue_form_has_a_word():
    """A form added to the drug catalogue needs its translated word, or it shows in English."""
    from edge_node.catalogue import KNOWN_FORMS
    from kiosk_ui import labels

    assert set(KNOWN_FORMS) <= set(labels.DRUG_FORMS)
