"""Paper reconciliation at the hub: pads, matches, every mismatch class, the report.

Tests run on SQLite and on PostgreSQL. The hub's clock is a test clock, and simulated nodes
sign their requests at its time, so "the node was online at 10:00" is a sync the hub really
received then. Each backend's database is created and migrated once for the module and
emptied before every test (a PostgreSQL schema costs a second to create and migrate).
"""

import ast
import csv
import inspect
import io
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import psycopg
import pytest
from babel.messages.pofile import read_po
from helpers.hub import SimNode, body_of
from helpers.hub_app import Clock

from central_hub import call_centre, paper, reconciliation
from central_hub.composition import open_storage
from central_hub.web import api_paper, i18n
from sync_protocol import identifiers
from sync_protocol.identifiers import make_pinfl, new_ulid
from sync_protocol.timeutil import TASHKENT, local_date, to_instant

PINFL = make_pinfl(date(1985, 3, 14), "male")
AMOXICILLIN = {"inn": "amoxicillin", "form": "capsule", "strength": "500 mg"}
PARACETAMOL = {"inn": "paracetamol", "form": "tablet", "strength": "500 mg"}


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def variants(names: str, cases: list[tuple]):
    """Every case on SQLite, the first also on PostgreSQL: the cases differ in data, not in
    the SQL they run."""
    params = [pytest.param("sqlite", *case, id=f"sqlite-{i}") for i, case in enumerate(cases)]
    params.insert(1, pytest.param("postgres", *cases[0], id="postgres-0",
                                  marks=pytest.mark.postgres))
    return pytest.mark.parametrize(("backend", *names.split(",")), params)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(scope="module")
def databases(request, tmp_path_factory):
    """One migrated database per backend for the whole module, opened on first use."""
    opened, schemas = {}, []

    def get(name: str):
        if name not in opened:
            if name == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('recon') / 'hub.db'}"
            else:
                base = request.getfixturevalue("postgres_url")
                schemas.append((base, f"test_recon_{new_ulid().lower()}"))
                url = f"{base}?schema={schemas[-1][1]}"
            opened[name] = open_storage(url)
        return opened[name]

    yield get
    for store in opened.values():
        store.close()
    for base, schema in schemas:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def storage(backend, databases):
    """The backend's database, emptied (its schema stays)."""
    store = databases(backend)
    with store.transaction() as tx:
        if tx.dialect == "sqlite":
            tables = [r["name"] for r in tx.query("SELECT name FROM sqlite_master WHERE type = "
                                                  "'table' AND name NOT LIKE 'sqlite_%'")]
        else:
            tables = [r["tablename"] for r in tx.query(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        for table in tables:
            if table != "schema_migrations":
                tx.execute(f"DELETE FROM {table}")
    return store


@pytest.fixture
def clock() -> Clock:
    """The hub's time, moved by the test. It starts at 08:00 in Tashkent tomorrow (after the
    test certificates were issued), so a test's day never straddles midnight."""
    tomorrow = local_date(datetime.now(UTC)) + timedelta(days=1)
    return Clock(datetime.combine(tomorrow, time(8), TASHKENT).astimezone(UTC))


@pytest.fixture
def hub(make_hub, clock):
    return make_hub(clock=clock)


class Day:
    """A clinic, a pharmacy and a second clinic on one hub, and the paper they write."""

    def __init__(self, hub, world, clock, storage) -> None:
        self.client, self.clock, self.storage = hub.test_client(), clock, storage
        self.clinic = SimNode(world.pki.clinic, self.client)
        self.pharmacy = SimNode(world.pki.pharmacy, self.client)
        self.clinic2 = SimNode(world.clinic2, self.client)
        self.clinic.register_facility()
        self.doctor = self.clinic.register_practitioner()
        self.patient = self.clinic.register_patient()
        self.pharmacy.register_facility()
        self.clinic2.register_facility()
        self.start = clock.now
        for node in (self.clinic, self.pharmacy, self.clinic2):
            self.sync(node)
        self.pad(self.clinic, 100, 149)

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def sync(self, node: SimNode, minutes: float | None = None) -> None:
        """A successful push of the node's new events at the hub's time `minutes`."""
        if minutes is not None:
            self.clock.now = self.at(minutes)
        pushed = getattr(node, "pushed", 0)
        response = node.push(node.log[pushed:], now=self.clock.now)
        assert response.status_code == 200, body_of(response)
        results = body_of(response)["results"]
        assert all(r["status"] == "accepted" for r in results), results
        node.pushed = len(node.log)

    def touch(self, node: SimNode, minutes: float) -> None:
        """A successful pull at the hub's time `minutes` (an idle node's sync)."""
        self.clock.now = self.at(minutes)
        self.pull(node)

    def pull(self, node: SimNode) -> list[dict]:
        """Everything new for the node, signed at the hub's time."""
        while True:
            response = node.pull(now=self.clock.now)
            assert response.status_code == 200, body_of(response)
            page = body_of(response)
            for item in page["events"]:
                node.received[item["event"]["id"]] = item["event"]
            node.cursor = page["next"]
            if not page["more"]:
                return list(node.received.values())

    def e_dispense(self, prescription_id: str, minutes: float, quantity: int = 20) -> dict:
        self.pharmacy.emit("MedicationDispensed", {
            "dispense_id": new_ulid(), "prescription_id": prescription_id, "item_no": 1,
            "quantity": quantity, "product": "Amoksil", "batch": "A12",
            "expiry": "2030-01-31", "dispensed_at": to_instant(self.at(minutes)),
            "facility_id": self.pharmacy.facility_id, "mode": "offline"})
        return self.pharmacy.log[-1]

    def pad(self, node: SimNode, first: int, last: int, series: str = "TAS"):
        response = self.client.post("/api/v1/paper/pads", json={
            "facility_id": node.facility_id, "series": series, "first_serial": first,
            "last_serial": last, "allocated_by": "Toshkent shahar SSB"})
        assert response.status_code == 201, body_of(response)
        return body_of(response)

    def paper_rx(self, serial: str, minutes: float, *, items=((AMOXICILLIN, 20),),
                 reason: str = "outage", node: SimNode | None = None) -> dict:
        node = node or self.clinic
        prescription_id = new_ulid()
        issued = to_instant(self.at(minutes))
        node.emit("PrescriptionIssued", {
            "prescription_id": prescription_id, "number": f"P-{serial}", "kind": "paper",
            "patient_id": self.patient, "pinfl": PINFL, "facility_id": node.facility_id,
            "practitioner_id": self.doctor, "issued_at": issued, "not_before": issued,
            "expires_at": to_instant(self.at(minutes + 10 * 24 * 60)), "chronic": False,
            "paper_serial": serial, "paper_reason": reason,
            "entered_at": to_instant(self.at(minutes + 300)),
            "items": [{"item_no": n, **drug, "quantity": quantity, "repeats": 0,
                       "min_days_between_fills": 0}
                      for n, (drug, quantity) in enumerate(items, start=1)]})
        return node.log[-1]

    def paper_dispense(self, minutes: float, *, items=((AMOXICILLIN, 20),),
                       reason: str = "outage", **names) -> dict:
        self.pharmacy.emit("PaperDispenseRecorded", {
            "dispense_id": new_ulid(), "facility_id": self.pharmacy.facility_id,
            "dispensed_at": to_instant(self.at(minutes)),
            "entered_at": to_instant(self.at(minutes + 300)), "paper_reason": reason,
            "patient_document": "AA1234567", "pharmacist": "Dorixona",
            "items": [{**drug, "quantity": quantity, "product": "Amoksil", "batch": "A12",
                       "expiry": "2030-01-31"} for drug, quantity in items], **names})
        return self.pharmacy.log[-1]

    def mismatches(self) -> list[dict]:
        with self.storage.reader() as tx:
            rows = tx.query("SELECT * FROM hub_conflicts WHERE kind = 'paper_mismatch' "
                            "ORDER BY raised_position")
        return [{**row, "details": json.loads(row["details"]),
                 "facility_ids": json.loads(row["facility_ids"])} for row in rows]

    def reasons(self) -> list[str]:
        return sorted(m["details"]["reason"] for m in self.mismatches())

    def report(self, node: SimNode, minutes: float = 0) -> dict:
        day = local_date(self.at(minutes)).isoformat()
        response = self.client.get(f"/api/v1/reconciliation?facility={node.facility_id}"
                                   f"&day={day}")
        assert response.status_code == 200, body_of(response)
        return body_of(response)


@pytest.fixture
def day(hub, world, clock, storage):
    return Day(hub, world, clock, storage)


# -- pads ---------------------------------------------------------------------------------

def test_a_pad_reaches_its_clinic_only(day):
    pads = [e for e in day.pull(day.clinic) if e["type"] == "PaperPadAllocated"]
    assert [(p["payload"]["series"], p["payload"]["first_serial"], p["payload"]["last_serial"])
            for p in pads] == [("TAS", 100, 149)]
    assert not [e for e in day.pull(day.pharmacy) if e["type"] == "PaperPadAllocated"]


@variants("first,last,series,status,code,field", [
    (140, 160, "TAS", 409, "pad_overlap", "first_serial"),
    (90, 100, "tas", 409, "pad_overlap", "first_serial"),
    (150, 140, "TAS", 400, "hub_error", "last_serial"),
    (1, 20_001, "TAS", 400, "hub_error", "last_serial"),
    (0, 10, "TAS", 400, "hub_error", "first_serial"),
    (150, 160, "T1", 400, "hub_error", "series"),
])
def test_bad_or_overlapping_pads_are_refused_and_change_nothing(day, first, last, series,
                                                                status, code, field):
    before = paper.list_pads(day.storage)
    response = day.client.post("/api/v1/paper/pads", json={
        "facility_id": day.clinic.facility_id, "series": series, "first_serial": first,
        "last_serial": last, "allocated_by": "SSB"})
    error = body_of(response)["error"]
    assert (response.status_code, error["code"], error["field"]) == (status, code, field)
    assert paper.list_pads(day.storage) == before


def test_pads_go_to_known_clinics_only(day):
    for facility, status in ((new_ulid(), 404), (day.pharmacy.facility_id, 400)):
        response = day.client.post("/api/v1/paper/pads", json={
            "facility_id": facility, "series": "TAS", "first_serial": 300,
            "last_serial": 310, "allocated_by": "SSB"})
        assert response.status_code == status
    assert day.pad(day.clinic2, 150, 199)["first_serial"] == 150  # adjacent: no overlap


# -- a clean day ----------------------------------------------------------------------------

def test_a_clean_day_raises_nothing_and_reports_every_match(day):
    rx = day.paper_rx("TAS-000101", 60)
    eid = day.clinic.prescribe(day.patient, day.doctor)
    e_number = day.clinic.log[-1]["payload"]["number"]
    day.sync(day.clinic, 5)
    # The pharmacy's paper log: the paper prescription, and half an e-prescription by number;
    # after the outage the other half is dispensed electronically.
    d1 = day.paper_dispense(120, paper_serial="TAS-000101")
    d2 = day.paper_dispense(130, items=((AMOXICILLIN, 10),), prescription_number=e_number)
    day.e_dispense(eid, 400, quantity=10)
    day.sync(day.pharmacy, 420)
    day.sync(day.clinic, 430)
    assert reconciliation.reconcile_overdue(day.storage, day.at(430) + timedelta(days=30)) == []
    assert day.mismatches() == []
    clinic = day.report(day.clinic)
    assert [(r["paper_serial"], r["status"]) for r in clinic["paper_prescriptions"]] == [
        ("TAS-000101", "matched")]
    pharmacy = day.report(day.pharmacy)
    assert {(m["dispense_id"], m["prescription_id"], m["matched_by"])
            for m in pharmacy["matches"]} == {
        (d1["payload"]["dispense_id"], rx["payload"]["prescription_id"], "serial"),
        (d2["payload"]["dispense_id"], eid, "number")}
    assert pharmacy["summary"]["unmatched_dispenses"] == 0
    assert pharmacy["mismatches"] == clinic["mismatches"] == []


# -- each mismatch class --------------------------------------------------------------------

@variants("holder", [(None,), ("clinic2",)])
def test_a_serial_outside_the_clinics_pads_is_flagged(day, holder):
    if holder:
        day.pad(day.clinic2, 200, 249)
    day.paper_rx("TAS-000210", 60)
    day.sync(day.clinic, 300)
    [m] = day.mismatches()
    assert m["details"]["reason"] == "serial_not_allocated"
    assert m["subject_id"] == "TAS-000210"
    assert m["details"]["pad_facility_id"] == (day.clinic2.facility_id if holder else None)


def test_one_serial_on_two_paper_prescriptions_is_flagged_once(day):
    first = day.paper_rx("TAS-000102", 60)
    second = day.paper_rx("TAS-000102", 90)
    day.sync(day.clinic, 300)
    day.sync(day.clinic, 301)  # a re-sync raises nothing new
    [m] = day.mismatches()
    assert (m["details"]["reason"], m["subject_id"]) == ("serial_used_twice", "TAS-000102")
    assert sorted(m["details"]["prescription_ids"]) == sorted(
        [first["payload"]["prescription_id"], second["payload"]["prescription_id"]])


@variants("pharmacy_first,dispensed,inn,prescribed", [
    (True, [(AMOXICILLIN, 30)], "amoxicillin", 20),
    (False, [(AMOXICILLIN, 30)], "amoxicillin", 20),
    (True, [(AMOXICILLIN, 15), (PARACETAMOL, 10)], "paracetamol", 0),
    (False, [(AMOXICILLIN, 15), (PARACETAMOL, 10)], "paracetamol", 0),
])
def test_more_dispensed_on_paper_than_prescribed_is_flagged_in_any_order(
        day, pharmacy_first, dispensed, inn, prescribed):
    day.paper_rx("TAS-000103", 60)
    day.paper_dispense(120, items=dispensed, paper_serial="TAS-000103")
    order = [day.pharmacy, day.clinic] if pharmacy_first else [day.clinic, day.pharmacy]
    for minutes, node in enumerate(order, start=300):
        day.sync(node, minutes)
    [m] = day.mismatches()
    assert m["details"]["reason"] == "quantity_above_prescribed"
    assert (m["details"]["inn"], m["details"]["prescribed"]) == (inn, prescribed)
    assert m["details"]["not_prescribed"] is (prescribed == 0)
    assert set(m["details"]["event_ids"]) >= {day.pharmacy.log[-1]["id"]}
    assert sorted(m["facility_ids"]) == sorted([day.clinic.facility_id,
                                                day.pharmacy.facility_id])


def test_paper_and_electronic_dispenses_together_past_the_total_are_flagged(day):
    eid = day.clinic.prescribe(day.patient, day.doctor)
    number = day.clinic.log[-1]["payload"]["number"]
    day.sync(day.clinic, 5)
    day.paper_dispense(120, prescription_number=number)  # all 20 on paper in the outage
    late = day.e_dispense(eid, 200)  # and 20 again at the counter afterwards
    day.sync(day.pharmacy, 300)
    [m] = day.mismatches()
    assert m["details"]["reason"] == "quantity_above_prescribed"
    assert (m["details"]["dispensed_on_paper"], m["details"]["dispensed_electronically"],
            m["details"]["excess"]) == (20, 20, 20)
    assert m["details"]["excess_dispense_event_id"] == late["id"]


@variants("contacts,reason,raised", [
    ((57, 59.5, 62), "outage", True),  # syncing every few minutes around it: online
    ((57, 59.5), "outage", False),  # last seen before, not after: the outage had begun
    ((50, 70), "outage", False),  # silent for 20 minutes around it: no proof
    ((57, 59.5, 62), "emergency", False),  # an emergency needs no outage
])
def test_paper_while_the_clinic_was_online(day, contacts, reason, raised):
    for minutes in contacts:
        day.touch(day.clinic, minutes)
    day.paper_rx("TAS-000104", 60, reason=reason)
    day.sync(day.clinic, 300)
    assert day.reasons() == (["paper_while_online"] if raised else [])


@variants("items,reason,raised", [
    (((AMOXICILLIN, 20),), "outage", True),  # an antibiotic, pharmacy online
    (((PARACETAMOL, 20),), "outage", False),  # needs no e-prescription
    (((AMOXICILLIN, 20),), "emergency", False),
])
def test_e_prescription_drug_on_paper_while_the_pharmacy_was_online(day, items, reason,
                                                                    raised):
    day.paper_rx("TAS-000105", 60, items=((AMOXICILLIN, 20), (PARACETAMOL, 20)))
    day.sync(day.clinic, 61)
    day.sync(day.pharmacy, 118)  # a push and a pull: both are contacts
    day.touch(day.pharmacy, 122)
    day.paper_dispense(120, items=items, reason=reason, paper_serial="TAS-000105")
    day.sync(day.pharmacy, 300)
    assert day.reasons() == (["e_rx_drug_on_paper_outside_outage"] if raised else [])


def test_an_online_check_waits_for_contacts_after_the_papers_time(day):
    day.touch(day.pharmacy, 118)
    day.paper_dispense(120, paper_serial="TAS-000106")
    day.sync(day.pharmacy, 121)  # entered at once: the hub cannot know yet
    assert day.reasons() == []
    day.touch(day.pharmacy, 124)
    assert reconciliation.reconcile_overdue(day.storage, day.at(124)) == []
    raised = reconciliation.reconcile_overdue(day.storage, day.at(130))
    assert [m["conflict_id"] for m in day.mismatches()] == raised
    assert day.reasons() == ["e_rx_drug_on_paper_outside_outage"]


def test_a_paper_dispense_never_matched_is_flagged_after_a_week(day):
    dispense = day.paper_dispense(120, paper_serial="TAS-000120")
    day.sync(day.pharmacy, 300)
    entered = day.at(420)
    assert reconciliation.reconcile_overdue(day.storage, entered + timedelta(days=6)) == []
    [raised] = reconciliation.reconcile_overdue(day.storage, entered + timedelta(days=8))
    assert reconciliation.reconcile_overdue(day.storage, entered + timedelta(days=9)) == []
    [m] = day.mismatches()
    assert (m["conflict_id"], m["details"]["reason"], m["subject_id"]) == (
        raised, "never_matched", "TAS-000120")
    assert m["details"]["event_ids"] == [dispense["id"]]
    assert day.report(day.pharmacy, 120)["mismatches"][0]["reason"] == "never_matched"


def test_mismatches_reach_the_nodes_involved(day):
    day.paper_rx("TAS-000107", 60)
    day.paper_dispense(120, items=((AMOXICILLIN, 25),), paper_serial="TAS-000107")
    day.sync(day.clinic, 300)
    day.sync(day.pharmacy, 301)
    for node in (day.clinic, day.pharmacy):
        raised = [e for e in day.pull(node) if e["type"] == "ConflictRaised"]
        assert [e["payload"]["details"]["reason"] for e in raised] == [
            "quantity_above_prescribed"]
    assert not [e for e in day.pull(day.clinic2) if e["type"] == "ConflictRaised"]


# -- the report -----------------------------------------------------------------------------

def test_the_report_as_csv_and_translated_html(day):
    day.paper_rx("TAS-000108", 60)
    day.paper_rx("TAS-000500", 70)  # not in a pad
    day.sync(day.clinic, 300)
    day_text = local_date(day.at(60)).isoformat()
    query = f"facility={day.clinic.facility_id}&day={day_text}"
    response = day.client.get(f"/api/v1/reconciliation.csv?{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [(r["record"], r["paper_serial"] or r["matched_with"], r["status"])
            for r in rows] == [("prescription", "TAS-000108", "unmatched"),
                               ("prescription", "TAS-000500", "unmatched"),
                               ("mismatch", "TAS-000500", "serial_not_allocated")]
    pages = {lang: day.client.get(f"/reconciliation?{query}&lang={lang}").get_data(
        as_text=True) for lang in ("uz", "ru", "en")}
    assert "Qog‘oz retseptlarni solishtirish" in pages["uz"]
    assert "Seriya raqami muassasaga berilgan blankalarda yo‘q" in pages["uz"]
    assert "Сверка бумажных рецептов" in pages["ru"]
    assert "Paper reconciliation" in pages["en"] and "TAS-000500" in pages["en"]


def test_the_report_by_facility_code_and_its_errors(day):
    ok = day.client.get(f"/api/v1/reconciliation?facility={day.clinic.identity.facility_code}")
    assert ok.status_code == 200
    assert body_of(ok)["facility"]["facility_id"] == day.clinic.facility_id
    for query, status, field in (("facility=NOPE-1", 404, "facility"),
                                 (f"facility={day.clinic.facility_id}&day=2026-13-01", 400,
                                  "day"), ("", 400, "facility")):
        response = day.client.get(f"/api/v1/reconciliation?{query}")
        assert (response.status_code, body_of(response)["error"]["field"]) == (status, field)


def test_the_paper_routes_need_the_api_token_when_one_is_set(day, hub):
    hub.extensions["dmed_hub"].config["API_TOKEN"] = "s3cret"
    assert day.client.get("/api/v1/paper/pads").status_code == 401
    ok = day.client.get("/api/v1/paper/pads", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and len(body_of(ok)["pads"]) == 1


def page_msgids() -> set[str]:
    """Every string the hub's pages show: template gettext calls, labels, and the messages
    of the errors the call-centre form shows."""
    found = set(i18n.LABELS.values())
    for template in Path(api_paper.__file__).parent.joinpath("templates").rglob("*.html"):
        found |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    sources = [inspect.getsource(call_centre), inspect.getsource(paper.find_facility),
               inspect.getsource(identifiers)]
    for tree in map(ast.parse, sources):
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") in ERRORS
                    and node.args and isinstance(node.args[0], ast.Constant)):
                found.add(node.args[0].value)
    return found


ERRORS = {"HubError", "NotFound", "InvalidPinfl", "InvalidPhone"}


@pytest.mark.parametrize("locale", ["uz", "ru"])
def test_every_string_of_the_hub_pages_is_translated(locale):
    catalog = {}  # the pages' catalogues: messages.po, and fleet.po for the fleet pages
    for path in sorted((i18n.TRANSLATIONS / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            catalog |= {m.id: m.string for m in read_po(handle) if m.id and m.string}
    wanted = page_msgids()
    assert len(wanted) > 80
    assert sorted(m for m in wanted if not catalog.get(m)) == []
    for msgid in wanted:
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(
            re.findall(r"%\(\w+\)s", catalog[msgid])), msgid
