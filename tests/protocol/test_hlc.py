"""The hybrid logical clock never goes backwards, also across a restart."""

from hypothesis import given
from hypothesis import strategies as st

from edge_node.services import facilities
from edge_node.services.access import SYSTEM
from edge_node.store import NodeStore
from sync_protocol.hlc import HlcTimestamp, HybridLogicalClock


class FakeWall:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_clock_is_monotonic_when_the_wall_clock_jumps_back():
    wall = FakeWall(1_800_000_000_000)
    clock = HybridLogicalClock(wall=wall)
    first = clock.now()
    wall.ms -= 3_600_000  # NTP correction or a dead RTC battery
    second = clock.now()
    third = clock.now()
    assert first < second < third
    assert second.wall_ms == first.wall_ms


@given(st.lists(st.integers(min_value=0, max_value=2_000_000_000_000), min_size=1,
                max_size=60))
def test_clock_is_strictly_increasing_for_any_wall_readings(readings):
    wall = FakeWall(readings[0])
    clock = HybridLogicalClock(wall=wall)
    issued = []
    for reading in readings:
        wall.ms = reading
        issued.append(clock.now())
    assert issued == sorted(issued)
    assert len(set(issued)) == len(issued)


def test_observing_a_remote_clock_moves_past_it():
    clock = HybridLogicalClock(wall=FakeWall(1000))
    remote = HlcTimestamp(5000, 7)
    merged = clock.observe(remote)
    assert merged > remote
    assert clock.now() > merged


def test_timestamps_sort_as_text_in_time_order():
    stamps = [HlcTimestamp(5, 2), HlcTimestamp(40, 0), HlcTimestamp(40, 11),
              HlcTimestamp(1_800_000_000_000, 0)]
    assert sorted(str(s) for s in stamps) == [str(s) for s in sorted(stamps)]
    assert all(HlcTimestamp.parse(str(s)) == s for s in stamps)


def test_restart_with_the_wall_clock_set_back_never_issues_an_earlier_time(tmp_path):
    path = tmp_path / "node.db"
    store = NodeStore(path, wall=FakeWall(1_800_000_000_000))
    store.initialise("node-a")
    facilities.register_facility(store, SYSTEM, code="F1", name="One", kind="clinic",
                                 region="TAS")
    before = max(e.timestamp for e in store.events())
    store.close()

    # The Pi boots without network: its clock says 1970.
    restarted = NodeStore(path, wall=FakeWall(0))
    facilities.register_facility(restarted, SYSTEM, code="F2", name="Two", kind="clinic",
                                 region="TAS")
    after = [e.timestamp for e in restarted.events()]
    assert after[-1] > before
    assert after == sorted(after)
