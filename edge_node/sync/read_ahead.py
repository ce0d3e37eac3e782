"""A pull's pages, fetched and read ahead of the page being applied.

Catching up is a pipeline of three steps per page: the hub builds and sends it, this node
reads it (each event's envelope, payload schema and hash), this node applies it. Each step
has its own thread here, so while page N is applied, page N+1 is read and the hub is
already building page N+2: the next request goes out as soon as an answer names its cursor,
not once the page has been read. The hub is another process and SQLite writes without the
GIL, so the steps overlap instead of waiting for each other (issue 17: the node's catch-up
over the bare INSERT into its log).

Besides the page being applied, at most `ahead` pages are fetched (or being fetched) and not
yet taken, so memory stays bounded; a page counts only once the caller has applied it and
committed its cursor, so whatever happens to the pages fetched ahead, nothing is skipped. A
failure (the hub unreachable, a page that does not read) reaches the caller in order, after
the pages before it, and stops the fetching.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sync_protocol import wire

Read = TypeVar("Read")

POLL_SECONDS = 0.1  # how often a waiting stage looks whether it was told to stop


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_DONE = object()  # the fetching ended after the last page


class ReadAhead(Generic[Read]):
    """The pages after `cursor`, in order; use as a context manager, take with `next_page`."""

    def __init__(self, fetch: Callable[[int], wire.PullResponse],
                 read: Callable[[wire.PullResponse], Read], cursor: int, *,
                 ahead: int = 2) -> None:
        if ahead < 1:
            raise ValueError("ahead must be at least 1")
        self._fetch, self._read = fetch, read
        self._slots = threading.Semaphore(ahead + 1)  # and the page being applied
        self._answers: queue.Queue[object] = queue.Queue()
        self._pages: queue.Queue[object] = queue.Queue()
        self._stop = threading.Event()
        self._taken = 0
        self._threads = [
            threading.Thread(target=self._fetching, args=(cursor,), name="dmed-pull-fetch",
                             daemon=True),
            threading.Thread(target=self._reading, name="dmed-pull-read", daemon=True)]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> ReadAhead[Read]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def next_page(self) -> tuple[wire.PullResponse, Read]:
        """The next page and what `read` made of it; raises what fetching or reading it
        raised. The page taken before this one frees its place for one more ahead."""
        if self._taken:
            self._slots.release()
        item = self._pages.get()
        if isinstance(item, _Failed):
            raise item.error
        if item is _DONE:  # a caller that asks past the last page (more was False)
            raise RuntimeError("the pull has no page after the last one")
        self._taken += 1
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop fetching; wait for a request under way to end (it has its own timeout)."""
        self._stop.set()
        for thread in self._threads:
            thread.join()

    # -- the two stages ----------------------------------------------------------------------
    def _fetching(self, cursor: int) -> None:
        try:
            while self._place():
                response = self._fetch(cursor)
                self._answers.put(response)
                if not response.more:
                    break
                cursor = response.next
        except BaseException as e:  # noqa: BLE001 - handed to the caller, in order
            self._answers.put(_Failed(e))
            return
        self._answers.put(_DONE)

    def _reading(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self._answers.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if isinstance(answer, _Failed) or answer is _DONE:
                self._pages.put(answer)
                return
            try:
                self._pages.put((answer, self._read(answer)))  # type: ignore[arg-type]
            except BaseException as e:  # noqa: BLE001 - handed to the caller, in order
                self._pages.put(_Failed(e))
                self._stop.set()  # nothing after an unreadable page is wanted
                return

    def _place(self) -> bool:
        """Wait for room for one more page ahead; False once told to stop."""
        while not self._stop.is_set():
            if self._slots.acquire(timeout=POLL_SECONDS):
                return True
        return False
