"""FHIR Bulk Data Access, system level: `$export` jobs that write one NDJSON file per type.

A job runs on its own thread and streams each type from the database (search.stream: a
server-side cursor on PostgreSQL), writing line by line, so memory does not grow with the
table. The same `write_ndjson` serves `dmed-hub fhir-export` offline.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sync_protocol.identifiers import new_ulid
from sync_protocol.timeutil import to_instant

from ..storage import Storage
from .access import Access, audit
from .errors import BadSearch, ExportNotFound
from .search import now_instant, stream
from .sources import SOURCES

log = logging.getLogger(__name__)

RUNNING, COMPLETED, FAILED = "running", "completed", "failed"
NDJSON = "application/fhir+ndjson"
WRITE_BUFFER_BYTES = 1 << 20  # lines reach the disk a megabyte at a time


@dataclass(frozen=True)
class Written:
    resource_type: str
    path: Path
    count: int


def parse_types(text: str | None, access: Access) -> list[str]:
    if not text:
        return sorted(access.types)
    types = [t.strip() for t in text.split(",") if t.strip()]
    for resource_type in types:
        if resource_type not in SOURCES:
            raise BadSearch("_type: %(type)s is not a resource type served here",
                            field="_type", code="unknown_type", type=resource_type[:64])
        access.check(resource_type)
    return sorted(set(types))


def parse_since(text: str | None) -> str | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise BadSearch("_since must be an instant with its time zone, e.g. "
                        "2026-01-01T00:00:00Z", field="_since", code="bad_date") from e
    if moment.tzinfo is None:
        raise BadSearch("_since must be an instant with its time zone, e.g. "
                        "2026-01-01T00:00:00Z", field="_since", code="bad_date")
    return to_instant(moment)


def write_ndjson(storage: Storage, access: Access, types: list[str], since: str | None,
                 directory: Path, now: Callable[[], datetime]) -> list[Written]:
    """Write <Type>.ndjson per type into `directory`; audit each type's count."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    moment = now_instant()
    for resource_type in types:
        path = directory / f"{resource_type}.ndjson"
        count = 0
        with storage.reader() as tx, path.open("w", encoding="utf-8",
                                                buffering=WRITE_BUFFER_BYTES) as out:
            for resource in stream(tx, resource_type, access, since, moment):
                out.write(json.dumps(resource, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
                count += 1
        with storage.transaction(exclusive=False) as tx:
            audit(tx, access, "export", resource_type, count, f"_since={since or ''}", now())
        written.append(Written(resource_type, path, count))
        log.info("FHIR export of %s: %s resources", resource_type, count)
    return written


class Exports:
    """Bulk export jobs of one hub app: kick-off, status, files, delete."""

    def __init__(self, storage: Storage, directory: Path,
                 clock: Callable[[], datetime]) -> None:
        self.storage = storage
        self.directory = directory
        self.clock = clock
        self.threads: dict[str, threading.Thread] = {}

    def start(self, access: Access, types: list[str], since: str | None,
              request_url: str) -> str:
        job_id = new_ulid()
        with self.storage.transaction(exclusive=False) as tx:
            tx.execute("INSERT INTO fhir_exports (job_id, client_id, types, since, request_url, "
                       "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (job_id, access.client_id, ",".join(types), since, request_url,
                        RUNNING, to_instant(self.clock())))
        thread = threading.Thread(target=self._run, args=(job_id, access, types, since),
                                  name=f"fhir-export-{job_id}", daemon=True)
        self.threads[job_id] = thread
        thread.start()
        return job_id

    def _run(self, job_id: str, access: Access, types: list[str], since: str | None) -> None:
        try:
            written = write_ndjson(self.storage, access, types, since,
                                   self.directory / job_id, self.clock)
            output, status, error = [{"type": w.resource_type, "count": w.count}
                                     for w in written], COMPLETED, None
        except Exception as e:  # the job fails and says so; the hub goes on
            log.exception("FHIR export %s failed", job_id)
            output, status, error = [], FAILED, type(e).__name__
        with self.storage.transaction(exclusive=False) as tx:
            tx.execute("UPDATE fhir_exports SET status = ?, finished_at = ?, output = ?, "
                       "error = ? WHERE job_id = ? AND status = ?",
                       (status, to_instant(self.clock()), json.dumps(output), error, job_id,
                        RUNNING))

    def job(self, job_id: str, access: Access) -> dict[str, Any]:
        with self.storage.reader() as tx:
            row = tx.one("SELECT * FROM fhir_exports WHERE job_id = ? AND client_id = ?",
                         (job_id, access.client_id))
        if row is None:
            raise ExportNotFound("Export %(job)s is not here (or not yours)", field="job",
                                 job=job_id)
        return row

    def file(self, job_id: str, resource_type: str, access: Access) -> Path:
        row = self.job(job_id, access)
        if row["status"] != COMPLETED or resource_type not in row["types"].split(","):
            raise ExportNotFound("No %(type)s file in export %(job)s", field="type",
                                 type=resource_type, job=job_id)
        return self.directory / job_id / f"{resource_type}.ndjson"

    def delete(self, job_id: str, access: Access) -> None:
        self.job(job_id, access)
        with self.storage.transaction(exclusive=False) as tx:
            tx.execute("DELETE FROM fhir_exports WHERE job_id = ?", (job_id,))
        shutil.rmtree(self.directory / job_id, ignore_errors=True)

    def wait(self, timeout: float | None = None) -> None:
        """For tests and shutdown: wait for every job started here."""
        for thread in list(self.threads.values()):
            thread.join(timeout)
