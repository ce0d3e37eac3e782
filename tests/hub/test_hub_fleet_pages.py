"""The fleet pages of the hub dashboard (central_hub.web.dashboard_fleet): regions by node state,
a region's nodes, a node's sync history, charts from real data, conflicts in words with
filters, CSV exports, in three languages. A seeded hub: simulated nodes of two regions push
and pull through signed requests; one over-dispensing conflict; a hand-moved clock."""

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from helpers.hub import SimNode
from helpers.hub_app import signed_in

from central_hub import conflict_words
from central_hub.web import dashboard_fleet, dashboard_pages, i18n

INTERVAL = 30
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def app(make_hub, clock, central_staff):
    return make_hub(clock=clock, SYNC_INTERVAL_SECONDS=INTERVAL, CHART_CACHE_SECONDS=0)


@pytest.fixture
def seeded(app, world, clock):
    """TAS: a clinic and a pharmacy (which dispensed one prescription twice); SAM: a pharmacy.
    Every node pushes and pulls once at the clock's time."""
    sims = {"clinic": SimNode(world.pki.clinic, app.test_client()),
            "pharmacy": SimNode(world.pki.pharmacy, app.test_client()),
            "sam": SimNode(world.sam_pharmacy, app.test_client())}
    for sim in sims.values():
        sim.register_facility()
    clinic, pharmacy = sims["clinic"], sims["pharmacy"]
    rx = clinic.prescribe(clinic.register_patient(), clinic.register_practitioner())
    pharmacy.dispense(rx)
    pharmacy.dispense(rx)
    for sim in sims.values():
        assert sim.push(now=clock.now).status_code == 200
        assert sim.pull(now=clock.now).status_code == 200
    return sims


@pytest.fixture
def client(app):
    return signed_in(app)


def html(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def row_of(page: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{re.escape(row_id)}"[^>]*>(.*?)</tr>', page, re.S)
    assert match, row_id
    return match.group(1)


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                   re.S)]


def svg_of(page: str, figure_id: str) -> ET.Element:
    match = re.search(rf'<figure id="{figure_id}">(.*?)</figure>', page, re.S)
    assert match, figure_id
    return ET.fromstring(match.group(1))  # valid XML, or this raises


def chart_values(svg: ET.Element) -> list[str]:
    return [d.text for d in svg.iter(f"{SVG}desc") if d.get("class") == "value"]


def test_the_pages_need_a_signed_in_staff_member(app, seeded):
    anonymous = app.test_client()
    for path in ("/dashboard/fleet/", "/dashboard/fleet/region/TAS",
                 "/dashboard/fleet/nodes.csv", "/dashboard/fleet/conflicts"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and "/staff/sign-in" in answer.headers["Location"]


def test_the_overview_counts_nodes_by_state_per_region(client, seeded, clock):
    page = html(client.get("/dashboard/fleet/?lang=en"))
    tas = cells(row_of(page, "region-TAS"))
    assert tas[:6] == ["TAS", "2", "2", "0", "0", "0"]  # nodes, healthy, lagging, offline...
    assert tas[6] == "1"  # the over-dispensing conflict, raised in TAS
    assert cells(row_of(page, "region-SAM"))[:6] == ["SAM", "1", "1", "0", "0", "0"]
    assert 'http-equiv="refresh" content="20"' in page and 'id="updated"' in page


def test_a_node_that_stops_syncing_is_flagged_within_two_intervals(client, seeded, clock):
    start = clock.now
    clock.now = start + timedelta(seconds=2 * INTERVAL - 5)
    assert seeded["clinic"].pull(now=clock.now).status_code == 200
    assert seeded["pharmacy"].pull(now=clock.now).status_code == 200
    clock.now = start + timedelta(seconds=2 * INTERVAL + 1)  # SAM's pharmacy missed two
    page = html(client.get("/dashboard/fleet/?lang=en"))
    assert cells(row_of(page, "region-SAM"))[:6] == ["SAM", "1", "0", "0", "1", "0"]
    assert cells(row_of(page, "region-TAS"))[:6] == ["TAS", "2", "2", "0", "0", "0"]
    region = html(client.get("/dashboard/fleet/region/SAM?lang=en"))
    row = row_of(region, f"node-{seeded['sam'].node_id}")
    assert "Offline" in row and "silent for 1 min" in row


def test_the_region_page_lists_its_nodes_with_what_staff_need(client, seeded, world, clock):
    page = html(client.get("/dashboard/fleet/region/TAS?lang=en"))
    pharmacy = cells(row_of(page, f"node-{seeded['pharmacy'].node_id}"))
    assert pharmacy[0].startswith("Facility TAS")  # its registered name, then its code
    assert pharmacy[2] == "Healthy"
    expiry = world.pki.pharmacy.cert.not_valid_after_utc.strftime("%Y-%m-%d")
    assert pharmacy[6] == expiry
    assert "Fully synced at" in pharmacy[7]
    assert seeded["sam"].node_id not in page
    only_offline = html(client.get("/dashboard/fleet/region/TAS?state=offline&lang=en"))
    assert "No node in this state" in only_offline
    assert client.get("/dashboard/fleet/region/TAS?state=bogus").status_code == 400
    assert client.get("/dashboard/fleet/region/XYZ").status_code == 404


def test_the_node_page_shows_its_sync_history_as_chart_and_table(client, seeded, storage):
    clinic = seeded["clinic"]
    page = html(client.get(f"/dashboard/fleet/node/{clinic.node_id}?lang=en"))
    rows = re.findall(r"<tr class=\"state-[a-z]+\"><td>.*?</tr>", page, re.S)
    assert len(rows) == 2  # one push, one pull
    push = [cells(r) for r in rows if "push" in r][0]
    assert push[2] == "done" and push[3] == str(len(clinic.log))
    values = chart_values(svg_of(page, "chart-history"))
    assert str(len(clinic.log)) in values
    assert "No errors in the recent history" in page


def test_the_node_page_tells_errors_in_words(client, seeded, clock):
    sam = seeded["sam"]
    stale = clock.now - timedelta(hours=2)
    assert sam.push(now=stale).status_code == 401  # refused: not the node's history
    assert sam.push(node_id="sam-other-0009", now=clock.now).status_code == 403
    page = html(client.get(f"/dashboard/fleet/node/{sam.node_id}?lang=ru"))
    errors = re.search(r'<ul id="errors">(.*?)</ul>', page, re.S).group(1)
    assert "Пакет указывает другой узел" in errors and "clock_skew" not in errors
    assert errors.count("<li>") == 1


def test_the_charts_are_valid_svg_from_real_data(client, seeded, clock):
    page = html(client.get("/dashboard/fleet/?lang=en"))
    assert "<script" not in page and "http://pygal" not in page
    events = svg_of(page, "chart-events")
    pushed = sum(len(s.log) for s in (seeded["clinic"], seeded["pharmacy"]))
    assert str(pushed) in chart_values(events)  # TAS's events this hour
    assert str(len(seeded["sam"].log)) in chart_values(events)
    conflicts = svg_of(page, "chart-conflicts")
    assert "1" in chart_values(conflicts)
    for figure in ("chart-lag-day", "chart-lag-week", "chart-offline"):
        svg_of(page, figure)
    # More data, another picture: the TAS clinic pushes three more events.
    clinic = seeded["clinic"]
    for _ in range(3):
        clinic.register_patient()
    assert clinic.push(now=clock.now).status_code == 200
    again = chart_values(svg_of(html(client.get("/dashboard/fleet/?lang=en")), "chart-events"))
    assert str(pushed + 3) in again and str(pushed) not in again


def test_nodes_offline_over_time_come_from_hourly_samples(client, seeded, clock, app):
    clock.now += timedelta(hours=2)  # every node silent; the next hour is sampled
    page = html(client.get("/dashboard/fleet/?lang=en"))
    values = chart_values(svg_of(page, "chart-offline"))
    assert "2" in values and "1" in values  # TAS two offline, SAM one


def test_conflicts_are_explained_in_words_in_each_language(client, seeded, storage):
    with storage.reader() as tx:
        number = tx.scalar("SELECT number FROM hub_prescriptions")
    page = html(client.get("/dashboard/fleet/conflicts?lang=en"))
    [section] = re.findall(r'<section class="conflict open".*?</section>', page, re.S)
    assert f"prescription No. {number}" in section
    assert "More was dispensed than was prescribed: 20 prescribed, 40 dispensed." in section
    assert section.count("dispensed at Facility TAS") == 2
    assert "What to do" in section and "Rule" in section
    assert "dispense_event_ids" not in section and "dispensed_by_facility" not in section
    ru = html(client.get("/dashboard/fleet/conflicts?lang=ru"))
    assert "Выдано больше, чем выписано: выписано 20, выдано 40." in ru
    uz = html(client.get("/dashboard/fleet/conflicts?lang=uz"))
    assert "Yozilganidan ko‘p berilgan: 20 yozilgan, 40 berilgan." in uz


@pytest.mark.parametrize(("query", "count"), [
    ("", 1), ("region=TAS", 1), ("region=SAM", 0), ("kind=over_dispensing", 1),
    ("kind=double_booking", 0), ("state=open", 1), ("state=resolved", 0), ("age=0", 1),
    ("age=1", 0),
])
def test_conflicts_are_filtered_by_region_kind_state_and_age(client, seeded, query, count):
    page = html(client.get(f"/dashboard/fleet/conflicts?{query}&lang=en"))
    assert page.count('<section class="conflict') == count
    for pair in filter(None, query.split("&")):
        name, value = pair.split("=")
        assert f'name="{name}"' in page and (f'value="{value}" selected' in page
                                              or f'value="{value}"' in page)


@pytest.mark.parametrize("query", ["kind=nope", "state=maybe", "age=-3", "age=abc"])
def test_a_bad_conflict_filter_gets_a_clear_error(client, seeded, query):
    answer = client.get(f"/dashboard/fleet/conflicts?{query}&lang=en")
    assert answer.status_code == 400 and 'class="error"' in answer.get_data(as_text=True)


def test_csv_exports_of_nodes_and_conflicts(client, seeded, storage):
    nodes = list(csv.reader(io.StringIO(client.get("/dashboard/fleet/nodes.csv").get_data(
        as_text=True))))
    assert tuple(nodes[0]) == dashboard_fleet.NODE_COLUMNS
    assert sorted(r[0] for r in nodes[1:]) == sorted(s.node_id for s in seeded.values())
    answer = client.get("/dashboard/fleet/conflicts.csv?state=open")
    assert answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert tuple(rows[0]) == dashboard_fleet.CONFLICT_COLUMNS and len(rows) == 2
    assert rows[1][1] == "over_dispensing" and rows[1][3] == "TAS"
    only_sam = list(csv.reader(io.StringIO(client.get(
        "/dashboard/fleet/nodes.csv?region=SAM").get_data(as_text=True))))
    assert [r[0] for r in only_sam[1:]] == [seeded["sam"].node_id]


@pytest.mark.parametrize("lang", ["uz", "ru", "en"])
def test_every_page_renders_in_each_language_with_a_strict_csp(client, seeded, lang):
    node = seeded["clinic"].node_id
    for path in ("/dashboard/fleet/", "/dashboard/fleet/region/TAS",
                 f"/dashboard/fleet/node/{node}", "/dashboard/fleet/conflicts"):
        answer = client.get(f"{path}?lang={lang}")
        page = html(answer)
        assert f'<html lang="{lang}">' in page and "<script" not in page
        assert answer.headers["Content-Security-Policy"] == dashboard_pages.CSP


def fleet_msgids() -> set[str]:
    found = set(dashboard_fleet.WORDS.values()) | {dashboard_fleet.ERROR_FALLBACK, "opened"}
    found |= set(conflict_words.SENTENCES)
    source = Path(dashboard_fleet.__file__).read_text(encoding="utf-8")
    found |= set(re.findall(r'translate\("([^"]+)"\)', source))
    templates = Path(dashboard_fleet.__file__).parent / "templates" / "fleet"
    for template in templates.glob("*.html"):
        found |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    return found


@pytest.mark.parametrize("locale", ["uz", "ru"])
def test_every_string_of_the_fleet_pages_is_translated(locale):
    catalog = {}
    for name in ("messages.po", dashboard_fleet.CATALOGUE):
        with (i18n.TRANSLATIONS / locale / "LC_MESSAGES" / name).open("rb") as handle:
            catalog.update({m.id: m.string for m in read_po(handle) if m.id and m.string})
    wanted = fleet_msgids()
    assert len(wanted) > 80
    assert sorted(m for m in wanted if m not in catalog) == []
    for msgid in wanted:
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(
            re.findall(r"%\(\w+\)s", catalog[msgid])), msgid


def test_a_drawn_chart_is_reused_while_its_data_is_unchanged_or_recent():
    from central_hub import charts
    drawn = []

    def draw():
        drawn.append(1)
        return charts.line("t", ["a", "b"], {"TAS": [len(drawn), 2]})

    key = ("test-chart", "en")
    first = charts.cached(key, [1, 2], draw, 0)
    assert charts.cached(key, [1, 2], draw, 0) is first and len(drawn) == 1
    assert charts.cached(key, [1, 3], draw, 60) is first and len(drawn) == 1  # recent enough
    assert charts.cached(key, [1, 3], draw, 0) is not first and len(drawn) == 2
