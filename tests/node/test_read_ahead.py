"""A pull's pages read ahead (edge_node.sync.read_ahead): in order, bounded, overlapping the
hub's work with this node's, and a failure handed over after the pages before it."""

import threading
import time

import pytest

from edge_node.sync.read_ahead import ReadAhead
from sync_protocol.wire import PullResponse

WAIT = 10  # seconds; every wait below ends far sooner unless the code under test hangs


def page(cursor: int, last: int) -> PullResponse:
    return PullResponse([], cursor + 1, last, cursor + 1 < last)


class Hub:
    """Pages 1..last; records each request and how many pages were out at once."""

    def __init__(self, last: int, fail_at: int | None = None) -> None:
        self.last, self.fail_at = last, fail_at
        self.asked: list[int] = []
        self.taken = 0
        self.most_ahead = 0
        self.lock = threading.Lock()

    def fetch(self, cursor: int) -> PullResponse:
        with self.lock:
            self.asked.append(cursor)
            self.most_ahead = max(self.most_ahead, len(self.asked) - self.taken)
        if cursor == self.fail_at:
            raise ConnectionError(f"page after {cursor} lost")
        return page(cursor, self.last)

    def took(self) -> None:
        with self.lock:
            self.taken += 1


def take_all(pages: ReadAhead, hub: Hub) -> list[int]:
    cursors = []
    while True:
        response, read = pages.next_page()
        hub.took()
        cursors.append(read)
        if not response.more:
            return cursors


def test_every_page_comes_once_in_order_and_the_fetching_ends_at_the_last():
    hub = Hub(last=7)
    with ReadAhead(hub.fetch, lambda response: response.next, 0) as pages:
        assert take_all(pages, hub) == [1, 2, 3, 4, 5, 6, 7]
    assert hub.asked == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("ahead", [1, 2, 3])
def test_no_more_than_ahead_pages_wait_besides_the_one_applied(ahead):
    hub = Hub(last=40)
    with ReadAhead(hub.fetch, lambda response: response.next, 0, ahead=ahead) as pages:
        pages.next_page()
        hub.took()
        # The caller is slow with its first page: the fetching runs ahead, and stops.
        deadline = time.monotonic() + WAIT
        while len(hub.asked) < 1 + ahead and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # room for a page too many, were one to be asked for
        assert len(hub.asked) == 1 + ahead
        assert take_all(pages, hub)[-1] == 40
    assert hub.most_ahead <= 1 + ahead


def test_the_next_request_goes_out_before_the_page_before_it_is_read():
    """The hub builds page 2 while this node still reads page 1: a read that waits for the
    next request would wait forever if the two ran one after the other."""
    hub = Hub(last=3)
    second_asked = threading.Event()
    fetch = hub.fetch

    def fetching(cursor: int) -> PullResponse:
        if cursor == 1:
            second_asked.set()
        return fetch(cursor)

    def read(response: PullResponse) -> int:
        if response.next == 1:
            assert second_asked.wait(WAIT), "page 2 was not asked for while page 1 was read"
        return response.next

    with ReadAhead(fetching, read, 0) as pages:
        assert take_all(pages, hub) == [1, 2, 3]


def test_a_lost_page_is_raised_after_the_pages_before_it_and_nothing_is_asked_after_it():
    hub = Hub(last=10, fail_at=3)
    with ReadAhead(hub.fetch, lambda response: response.next, 0) as pages:
        assert [pages.next_page()[1] for _ in range(3)] == [1, 2, 3]
        with pytest.raises(ConnectionError, match="after 3"):
            pages.next_page()
    assert hub.asked == [0, 1, 2, 3]


def test_an_unreadable_page_is_raised_in_its_turn_and_stops_the_fetching():
    hub = Hub(last=50)

    def read(response: PullResponse) -> int:
        if response.next == 2:
            raise ValueError("page 2 does not read")
        return response.next

    with ReadAhead(hub.fetch, read, 0) as pages:
        assert pages.next_page()[1] == 1
        with pytest.raises(ValueError, match="page 2"):
            pages.next_page()
    # The pages there was room for while page 2 was read (page 1's place freed once page 2
    # was asked for, and two ahead of it), and none after.
    assert hub.asked == list(range(len(hub.asked))) and len(hub.asked) <= 4


def test_closing_early_stops_a_fetching_that_waits_for_room():
    hub = Hub(last=1000)
    pages = ReadAhead(hub.fetch, lambda response: response.next, 0)
    pages.next_page()
    closer = threading.Thread(target=pages.close)
    closer.start()
    closer.join(WAIT)
    assert not closer.is_alive(), "close() did not return"
    assert len(hub.asked) <= 3  # the page taken and two ahead, no more
    assert not any(t.is_alive() for t in threading.enumerate()
                   if t.name.startswith("dmed-pull-"))


def test_ahead_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ReadAhead(Hub(last=1).fetch, lambda response: response, 0, ahead=0)
