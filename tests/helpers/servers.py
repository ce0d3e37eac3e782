"""Loopback servers for the tests: free ports, a URL nothing listens on (an outage), and a
WSGI app served by a thread."""

from __future__ import annotations

import socket
import threading
from typing import Any

from werkzeug.serving import make_server

HOST = "127.0.0.1"
# How often a server thread checks for shutdown: teardown waits at most this long.
POLL_SECONDS = 0.05


# -- servers -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def dead_url() -> str:
    """A loopback URL nothing listens on: connecting fails at once (an outage)."""
    return f"http://{HOST}:{free_port()}"


class ServerThread:
    """A WSGI app served on a loopback port by a thread, stopped at close()."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.server = make_server(HOST, port, app, threaded=True)
        self.port = self.server.port
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": POLL_SECONDS},
                                       name=f"serve-{self.port}", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
