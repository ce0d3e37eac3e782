"""Queued SMS are delivered by the console adapter, and wait through outages."""

from datetime import timedelta

from edge_node.services.sms import (
    ConsoleSmsGateway,
    SmsDeliveryFailed,
    deliver_pending,
    queue_sms,
)
from sync_protocol.timeutil import utc_now


class DownGateway:
    def __init__(self):
        self.calls = 0

    def send(self, phone, body):
        self.calls += 1
        raise SmsDeliveryFailed("gateway unreachable")


def test_console_adapter_delivers_what_registration_queued(store, seeded):
    gateway = ConsoleSmsGateway()
    result = deliver_pending(store, gateway)
    assert result["sent"] == len(seeded["patients"]) and result["waiting"] == 0
    phones = {phone for phone, _ in gateway.sent}
    assert phones == {r["phone"] for r in store.query("SELECT phone FROM patients")}
    assert deliver_pending(store, gateway)["sent"] == 0  # nothing is sent twice


def test_outage_keeps_texts_and_backs_off(store):
    with store.transaction() as tx:
        queue_sms(tx.conn, "+998901234567", "salom", "test")
    down = DownGateway()
    now = utc_now()
    assert deliver_pending(store, down, now=now) == {"sent": 0, "failed": 1, "waiting": 1}
    assert deliver_pending(store, down, now=now + timedelta(seconds=5))["failed"] == 0
    assert down.calls == 1  # not retried before its backoff
    row = store.one("SELECT * FROM sms_outbox")
    assert row["attempts"] == 1 and "unreachable" in row["last_error"]
    up = ConsoleSmsGateway()
    assert deliver_pending(store, up, now=now + timedelta(minutes=5))["sent"] == 1
    assert up.sent == [("+998901234567", "salom")]
