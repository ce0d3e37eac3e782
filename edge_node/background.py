"""Background jobs of a running node (SMS sender, sync agent, certificate renewal), on `schedule`.

They run in one daemon thread and write through the store's single write path.
"""

from __future__ import annotations

import logging
import threading

import schedule

from .services.sms import ConsoleSmsGateway, HttpSmsGateway, SmsGateway, deliver_pending
from .store import NodeStore

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
RENEWAL_CHECK_MINUTES = 60


def sms_gateway(config: dict) -> SmsGateway:
    if config.get("SMS_GATEWAY_URL"):
        return HttpSmsGateway(config["SMS_GATEWAY_URL"], config.get("SMS_GATEWAY_TOKEN", ""))
    return ConsoleSmsGateway()


class BackgroundJobs:
    def __init__(self, store: NodeStore, config: dict, sync_agent=None, renewal=None) -> None:
        self.scheduler = schedule.Scheduler()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        gateway = sms_gateway(config)
        self.scheduler.every(int(config["SMS_INTERVAL_SECONDS"])).seconds.do(
            self._guarded, "sms", lambda: deliver_pending(store, gateway))
        if sync_agent is not None:
            # The agent decides when it is due (interval, or backoff while offline).
            self.scheduler.every(1).seconds.do(self._guarded, "sync", sync_agent.tick)
        if renewal is not None:  # a certificate lives two years: looking hourly is plenty
            self.scheduler.every(RENEWAL_CHECK_MINUTES).minutes.do(
                self._guarded, "renewal", renewal.run_once)

    @staticmethod
    def _guarded(name: str, job) -> None:
        # One failing job must not stop the others or the thread.
        try:
            job()
        except Exception:
            log.exception("background job %s failed", name)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dmed-jobs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.scheduler.run_pending()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
