"""What the bounded JSON parser (issue 11.3) costs over bare ``json.loads``, same run.

Bodies: a small API body, and sync push bodies of realistic events (envelope, payload with a
nested item list). The ratio parse_json / json.loads is the figure; the depth scan runs only
when a body has more openers than the depth limit, so small bodies pay almost nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import report, timed  # noqa: E402
from sync_protocol.json_body import parse_json  # noqa: E402


def api_body() -> bytes:
    return json.dumps({"full_name": "Saidova Kamola", "phone": "+998 90 765 43 21",
                       "facility_id": "01J0000000000000000000000F",
                       "pinfl": "41506902613776"}).encode()


def push_body(events: int) -> bytes:
    return json.dumps({"node_id": "tas-clinic-0001", "events": [{
        "id": f"01J{i:023d}", "origin": "tas-clinic-0001", "seq": i + 1,
        "hlc": "2026-12-06T04:00:00.000Z-0001", "type": "PrescriptionIssued", "version": 1,
        "prev_hash": "0" * 64, "hash": "f" * 64,
        "payload": {"prescription_id": f"01J{i:023d}", "patient_id": "01J" + "1" * 23,
                    "items": [{"inn": "amoxicillin", "form": "capsule", "strength": "500 mg",
                               "quantity": 20, "dosage": "1 capsule [x3] a day"}],
                    "valid_until": "2027-01-05"}} for i in range(events)]}).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    rows = []
    for name, body, repeat in (("api body", api_body(), args.repeat * 500),
                               ("push, 100 events", push_body(100), args.repeat * 5),
                               ("push, 2000 events", push_body(2000), args.repeat)):
        bare = min(timed(lambda b=body: json.loads(b), repeat) for _ in range(3)) / repeat
        ours = min(timed(lambda b=body: parse_json(b, max_bytes=len(b)), repeat)
                   for _ in range(3)) / repeat
        rows.append({"body": name, "bytes": len(body), "json_loads_us": bare * 1e6,
                     "parse_json_us": ours * 1e6, "ratio": ours / bare})
    report("json_body", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
