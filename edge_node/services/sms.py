"""SMS outbox and delivery adapters.

Texts are queued in the same transaction as the change that needs them, then delivered by a
background job. During an outage they wait, with backoff, and are never lost.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import requests

from sync_protocol.timeutil import to_instant, utc_now

from ..store import NodeStore

log = logging.getLogger(__name__)

# Retry quickly at first, then settle at a quarter hour: outages here last hours, not seconds.
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 900
HTTP_TIMEOUT_SECONDS = 10
BATCH = 50


class SmsDeliveryFailed(Exception):
    pass


class SmsGateway(Protocol):
    def send(self, phone: str, body: str) -> None: ...


@dataclass
class ConsoleSmsGateway:
    """Development adapter: writes each text to the log and keeps it for tests to read."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    def send(self, phone: str, body: str) -> None:
        self.sent.append((phone, body))
        log.info("SMS to %s: %s", phone, body)


@dataclass
class HttpSmsGateway:
    """Posts ``{"phone", "text"}`` as JSON to a provider's HTTP endpoint."""

    url: str
    token: str = ""

    def send(self, phone: str, body: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = requests.post(self.url, json={"phone": phone, "text": body},
                                     headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
            response.raise_for_status()
        except requests.RequestException as e:
            raise SmsDeliveryFailed(f"SMS gateway unreachable: {type(e).__name__}") from e


def queue_sms(conn: sqlite3.Connection, phone: str, body: str, purpose: str) -> int:
    cursor = conn.execute(
        "INSERT INTO sms_outbox (phone, body, purpose, created_at) VALUES (?, ?, ?, ?)",
        (phone, body, purpose, to_instant(utc_now())))
    return int(cursor.lastrowid or 0)


def deliver_pending(store: NodeStore, gateway: SmsGateway, now: datetime | None = None) -> dict:
    """Send what is due; a failure schedules the next attempt and never drops the text."""
    now = now or utc_now()
    due = store.query(
        "SELECT id, phone, body, attempts FROM sms_outbox WHERE sent_at IS NULL AND"
        " (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
        (to_instant(now), BATCH))
    sent = failed = 0
    for row in due:
        try:
            gateway.send(row["phone"], row["body"])
        except SmsDeliveryFailed as e:
            failed += 1
            delay = min(RETRY_BASE_SECONDS * 2 ** row["attempts"], RETRY_MAX_SECONDS)
            with store.transaction() as tx:
                tx.conn.execute(
                    "UPDATE sms_outbox SET attempts = attempts + 1, last_error = ?,"
                    " next_attempt_at = ? WHERE id = ?",
                    (str(e), to_instant(now + timedelta(seconds=delay)), row["id"]))
            continue
        sent += 1
        with store.transaction() as tx:
            tx.conn.execute("UPDATE sms_outbox SET sent_at = ?, attempts = attempts + 1"
                            " WHERE id = ?", (to_instant(now), row["id"]))
    waiting = store.one("SELECT COUNT(*) AS n FROM sms_outbox WHERE sent_at IS NULL")
    return {"sent": sent, "failed": failed, "waiting": waiting["n"] if waiting else 0}


def outbox(store: NodeStore, limit: int = 100) -> list[dict]:
    rows = store.query("SELECT * FROM sms_outbox ORDER BY id DESC LIMIT ?", (limit,))
    return [dict(r) for r in rows]
