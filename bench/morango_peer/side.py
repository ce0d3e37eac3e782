"""Commands of one Morango instance, run by bench/bench_peer_morango.py in Morango's venv.

    python side.py DB SYSTEM_ID setup server|client
    python side.py DB SYSTEM_ID fill DATASET COUNT NOTE_CHARS
    python side.py DB SYSTEM_ID serve PORT
    python side.py DB SYSTEM_ID sync URL DATASET push|pull CHUNK_SIZE|default
    python side.py DB SYSTEM_ID count

Each prints one JSON line. DB is the instance's SQLite file; SYSTEM_ID keeps two instances
on one machine apart (Morango derives its instance id from it).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCOPE = "dmed_full"  # one scope: everything under the dataset (the root certificate's id)
USER, PASSWORD = "bench", "bench-only-password"  # a throwaway instance on loopback
FILL_BATCH = 1000


def configure(db: str, system_id: str) -> None:
    os.environ["MORANGO_SYSTEM_ID"] = system_id
    sys.path.insert(0, str(HERE))
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="bench-only", ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework",
                        "morango", "dmedpeer"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db,
                               "OPTIONS": {"timeout": 120}}},
        ROOT_URLCONF="morango.urls", USE_TZ=True, TIME_ZONE="UTC", MIDDLEWARE=[],
        REST_FRAMEWORK={"DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]},
        LOGGING={"version": 1, "disable_existing_loggers": True},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def setup(role: str) -> dict:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from morango.models.certificates import Certificate, ScopeDefinition

    call_command("migrate", run_syncdb=True, verbosity=0)
    ScopeDefinition.objects.get_or_create(id=SCOPE, defaults={
        "profile": "dmedbench", "version": 1, "primary_scope_param_key": "dataset",
        "description": "Everything of ${dataset}", "read_filter_template": "",
        "write_filter_template": "", "read_write_filter_template": "${dataset}"})
    if role != "server":
        return {"ok": True}
    root = Certificate.generate_root_certificate(SCOPE)
    User.objects.create_superuser(USER, password=PASSWORD)
    return {"ok": True, "dataset": root.id}


def fill(dataset: str, count: int, note_chars: int) -> dict:
    """`count` records, stored and serialized into Morango's store before the timed sync (the
    sync's best case: nothing is left to serialize, as our events are in the log already)."""
    from dmedpeer.models import PROFILE, Dispense
    from morango.models.certificates import Filter
    from morango.sync.controller import MorangoProfileController

    now = datetime.now(UTC)
    start = time.perf_counter()
    for first in range(0, count, FILL_BATCH):
        rows = []
        for _ in range(first, min(count, first + FILL_BATCH)):
            row = Dispense(dataset=dataset, prescription_id=uuid.uuid4().hex[:26].upper(),
                           item_no=1, quantity=5, product="Amoksitsillin 500", batch="B-1",
                           expiry=date(2028, 1, 31), dispensed_at=now,
                           facility_id=uuid.uuid4().hex[:26].upper(), mode="offline",
                           pharmacist="Karimova Nilufar", note="x" * note_chars)
            row.id = row.calculate_uuid()
            rows.append(row)
        Dispense.objects.bulk_create(rows)
    MorangoProfileController(PROFILE).serialize_into_store(Filter(dataset))
    from django.db.models import Avg
    from django.db.models.functions import Length
    from morango.models.core import Store

    size = Store.objects.aggregate(size=Avg(Length("serialized")))["size"] or 0
    return {"ok": True, "seconds": round(time.perf_counter() - start, 2),
            "records": Dispense.objects.count(), "record_bytes": round(size)}


def serve(port: int) -> None:
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    run("127.0.0.1", port, get_wsgi_application(), threading=True)


def sync(url: str, dataset: str, direction: str, chunk: str) -> dict:
    from dmedpeer.models import PROFILE, Dispense
    from morango.models.certificates import Filter
    from morango.sync.controller import MorangoProfileController

    kwargs = {} if chunk == "default" else {"chunk_size": int(chunk)}
    connection = MorangoProfileController(PROFILE).create_network_connection(url, **kwargs)
    server_cert = connection.get_remote_certificates(dataset, SCOPE)[0]
    client_cert = connection.certificate_signing_request(
        server_cert, SCOPE, {"dataset": dataset}, userargs=USER, password=PASSWORD)
    before = Dispense.objects.count()
    start = time.perf_counter()
    client = connection.create_sync_session(client_cert, server_cert)
    if direction == "push":
        client.initiate_push(Filter(dataset))
    else:
        client.initiate_pull(Filter(dataset))
    seconds = time.perf_counter() - start
    connection.close_sync_session(client.sync_session)
    connection.close()
    return {"ok": True, "seconds": seconds, "chunk_size": connection.chunk_size,
            "client_records_before": before, "client_records": Dispense.objects.count(),
            "peak_mb": peak_mb()}


def count() -> dict:
    from dmedpeer.models import Dispense

    return {"records": Dispense.objects.count()}


def main(argv: list[str]) -> None:
    db, system_id, command, *rest = argv
    configure(db, system_id)
    if command == "serve":
        serve(int(rest[0]))
        return
    result = {"setup": lambda: setup(rest[0]),
              "fill": lambda: fill(rest[0], int(rest[1]), int(rest[2])),
              "sync": lambda: sync(*rest), "count": count}[command]()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
