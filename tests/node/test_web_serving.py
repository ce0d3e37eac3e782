"""The node's web server options (edge_node.web.serving): one write per page, the queue
warning at most once a minute, served for real over loopback."""

from __future__ import annotations

import logging
import socket
import threading

from edge_node.web import serving


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(message: str = "Task queue depth is %d", depth: int = 3) -> logging.LogRecord:
    return logging.LogRecord(serving.QUEUE_LOGGER, logging.WARNING, __file__, 1, message,
                             (depth,), None)


def test_the_queue_warning_passes_once_per_period_and_counts_the_rest():
    clock = Clock()
    limit = serving.EveryNSeconds(60, clock=clock)
    assert limit.filter(record())
    clock.now = 30
    assert not limit.filter(record()) and not limit.filter(record())
    clock.now = 61
    later = record(depth=5)
    assert limit.filter(later)
    assert later.getMessage() == "Task queue depth is 5 (and 2 more since the last report)"
    assert not limit.filter(record())


def test_a_page_leaves_the_node_in_one_write_with_its_headers(app, seeded):
    server = serving.create_node_server(app, "127.0.0.1", 0)
    assert server.adj.send_bytes == serving.SEND_BYTES and server.adj.threads == 8
    assert any(isinstance(f, serving.EveryNSeconds)
               for f in logging.getLogger(serving.QUEUE_LOGGER).filters)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.effective_port), timeout=10) as sock:
            sock.sendall(b"GET /ui/kiosk/identify HTTP/1.1\r\nHost: node\r\n"
                         b"Connection: close\r\n\r\n")
            first = sock.recv(65536)  # one segment: the status line, headers and the page
            rest = b""
            while chunk := sock.recv(65536):
                rest += chunk
    finally:
        server.close()
        thread.join(timeout=10)
    head, _, body = (first + rest).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Cache-Control: no-store" in head
    assert b"</html>" in body
    assert b"</html>" in first, "headers and page were sent apart"
