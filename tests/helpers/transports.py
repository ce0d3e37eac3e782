"""requests transports for the sync tests: a node's HubClient talks to a hub app in-process
(signing, encoding and decoding exactly as over the network), loses answers on demand, or
sends its batches twice."""

from __future__ import annotations

import gzip
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from edge_node.sync.client import HubClient


class FlaskTransport(BaseAdapter):
    """A requests transport that hands each request to a Flask app in-process: the node's
    HubClient signs, encodes and decodes exactly as over the network."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,
             proxies=None) -> requests.Response:
        url = urlsplit(request.url)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("content-length", "host", "connection")}
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.open(url.path, query_string=url.query, method=request.method,
                                  data=body, headers=headers)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        data = answer.get_data()
        if response.headers.get("Content-Encoding") == "gzip":  # what urllib3 would undo
            data = gzip.decompress(data)
            del response.headers["Content-Encoding"]
        response.headers.setdefault("Date", formatdate(usegmt=True))
        response._content = data
        response.encoding = "utf-8"
        response.url, response.request = request.url, request
        answer.close()
        return response

    def close(self) -> None:
        pass


class FaultyTransport(FlaskTransport):
    """FlaskTransport whose next requests can lose their answer: the hub did the work (a
    push committed, a page served) but the node never hears back."""

    DROP = "drop"

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.faults: list[str | None] = []
        self.dropped = 0

    def send(self, request, **kwargs) -> requests.Response:
        fault = self.faults.pop(0) if self.faults else None
        response = super().send(request, **kwargs)
        if fault == self.DROP:
            self.dropped += 1
            raise requests.ConnectionError("the answer was lost on the way back")
        return response


class RepeatingClient(HubClient):
    """A HubClient that sends its next `repeats` batches twice, freshly signed each time:
    a node retrying a batch whose answer it never saw."""

    repeats = 0
    repeated = 0

    def push(self, events: list[dict]) -> Any:
        response = super().push(events)
        if self.repeats > 0:
            self.repeats -= 1
            self.repeated += 1
            response = super().push(events)
        return response
