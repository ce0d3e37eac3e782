"""Signed-cookie sessions with the serializer kept per key (edge_node.web.app): a new secret
key refuses the old cookies at once, a fallback key still reads them."""

from __future__ import annotations

import pytest
from helpers.ui import kiosk_sign_in  # noqa: F401

pytestmark = pytest.mark.usefixtures("catalogues")


def identified(client) -> bool:
    response = client.get("/ui/kiosk/home")
    return response.status_code == 200


@pytest.mark.parametrize("keep_old_key", [False, True])
def test_changing_the_secret_key_applies_to_the_next_request(app, client, pinned,  # noqa: F811
                                                             keep_old_key):
    kiosk_sign_in(client, pinned["patient"])
    assert identified(client)
    old = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "a-new-secret"
    if keep_old_key:
        app.config["SECRET_KEY_FALLBACKS"] = [old]
    assert identified(client) is keep_old_key
