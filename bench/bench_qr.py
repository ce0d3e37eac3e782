"""Benchmark the prescription QR code on one core: issue per second and verify per second.

    .venv/bin/python bench/bench_qr.py [--n 2000] [--rounds 7]

issue = sign + encode + render SVG; verify = decode the digits + check the signature and the
validity window. Each figure is measured `rounds` times over `n` operations; "best" is the
fastest round (what the machine can do), "median" the typical one on a shared machine. The bare
signature check (cryptography alone, same bytes) is the floor that verify cannot beat.
Prints JSON, then a readable table.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cryptography
import segno
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from sync_protocol import cose, qr
from sync_protocol.numeric import decode_transport

VERIFY_TARGET_PER_SECOND = 5000  # the issue's target for ES256 verification on one core
VERIFY_RATIO_TARGET = 0.70  # issue 17: decode + claims + signature over the bare ES256 check
# Drawing a symbol takes tens of milliseconds (segno picks the best of 8 masks in Python), so
# issue and render run n / ISSUE_SHARE times per round to keep the run short.
ISSUE_SHARE = 50
EU_VECTOR = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / \
    "eu-dcc-common" / "CO3.json"  # an ES256 HC1 code, to compare the EU path


def signer(alg: str, now: datetime):
    key = ec.generate_private_key(ec.SECP256R1()) if alg == "ES256" \
        else ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{alg}")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=400))
            .sign(key, None if alg == "EdDSA" else hashes.SHA256()))
    return key, cert


def claims(now: datetime) -> qr.PrescriptionClaims:
    return qr.PrescriptionClaims(
        issuer="TAS-0042-node-1", issued_at=now, not_before=now,
        expires_at=now + timedelta(days=30), prescription_id="01JNF8Z4W2K7Q9X3V5T6R8M1PA",
        pinfl="31203851234567", prescriber="PR-000123", number="TAS-2026-000123", kind="e",
        items=(qr.PrescriptionItemClaim("amoxicillin", "500 mg", "capsule", 20, 1, 7),
               qr.PrescriptionItemClaim("ibuprofen", "400 mg", "tablet", 30)))


def measure(cases: dict[str, tuple[Callable[[], object], int]], rounds: int) -> dict:
    """Time every case `rounds` times, interleaved, so that a busy neighbour slows them alike."""
    rates: dict[str, list[float]] = {name: [] for name in cases}
    for fn, n in cases.values():
        for _ in range(min(n, 20)):  # warm caches (the keyring, OpenSSL tables)
            fn()
    for _ in range(rounds):
        for name, (fn, n) in cases.items():
            start = time.perf_counter()
            for _ in range(n):
                fn()
            rates[name].append(n / (time.perf_counter() - start))
    return {name: {"n": cases[name][1], "best_per_s": round(max(r), 1),
                   "median_per_s": round(statistics.median(r), 1),
                   "best_us": round(1e6 / max(r), 1), "rounds_per_s": r}
            for name, r in rates.items()}


def paired_ratio(figures: dict, name: str, reference: str) -> float:
    """The median over rounds of name's rate over reference's rate in the same round: a
    neighbour's burst slows both sides of a pair alike, where best-of-rounds figures taken
    apart can each catch a different quiet moment."""
    pairs = zip(figures[name]["rounds_per_s"], figures[reference]["rounds_per_s"], strict=True)
    return round(statistics.median(a / b for a, b in pairs), 3)


def bare_check(message: cose.Sign1Message, public_key):
    data, sig = message.to_be_signed(), message.signature
    if message.alg == cose.ALG_ES256:
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda: public_key.verify(der, data, algorithm)
    return lambda: public_key.verify(sig, data)


def measure_algorithm(key, cert, now: datetime, n: int, n_issue: int, rounds: int) -> dict:
    certs, rx = [cert], claims(now)
    text = qr.issue(rx, key, cert)
    if not qr.verify(text, certs, now=now).valid:
        raise SystemExit("the benchmark code does not verify")
    message = cose.decode_sign1(decode_transport(text).cose)
    figures = {"code": {"digits": len(text), "cose_bytes": len(qr.sign(rx, key, cert)),
                        "qr_version": segno.make_qr(text, error="m", mode="numeric",
                                                    boost_error=False).designator}}
    figures |= measure({
        "issue": (lambda: qr.render_svg(qr.issue(rx, key, cert)), n_issue),
        "render_svg": (lambda: qr.render_svg(text), n_issue),
        "sign_encode": (lambda: qr.issue(rx, key, cert), n),
        "verify": (lambda: qr.verify(text, certs, now=now), n),
        "verify_signature_only": (lambda: qr.verify(text, certs), n),
        # every cache cold: the keyring built from the certificates, the protected header
        # decoded (the first code of a signer after a restart or a new trust list)
        "verify_cold_caches": (lambda: (cose.clear_caches(), qr.verify(text, certs, now=now)), n),
        "bare_signature_check": (bare_check(message, cert.public_key()), n),
    }, rounds)
    figures["verify_cost_over_bare_check"] = round(
        figures["verify"]["best_us"] / figures["bare_signature_check"]["best_us"], 2)
    figures["verify_over_bare_paired"] = paired_ratio(figures, "verify", "bare_signature_check")
    figures["verify_cold_over_bare_paired"] = paired_ratio(figures, "verify_cold_caches",
                                                           "bare_signature_check")
    for figure in figures.values():
        if isinstance(figure, dict):
            figure.pop("rounds_per_s", None)
    return figures


def run(n: int, rounds: int) -> dict:
    now = datetime.now(UTC)
    report: dict = {
        "benchmark": "qr", "n": n, "rounds": rounds,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(), "cryptography": cryptography.__version__,
        "cores_allowed": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else None, "threads": 1, "algorithms": {},
    }
    n_issue = max(5, n // ISSUE_SHARE)
    for alg in ("ES256", "EdDSA"):
        key, cert = signer(alg, now)
        report["algorithms"][alg] = measure_algorithm(key, cert, now, n, n_issue, rounds)
    if EU_VECTOR.is_file():
        vector = json.loads(EU_VECTOR.read_text(encoding="utf-8"))
        eu_cert = x509.load_der_x509_certificate(
            base64.b64decode(vector["TESTCTX"]["CERTIFICATE"]))
        report["eu_hc1_verify_es256"] = measure(
            {"verify": (lambda: qr.verify(vector["PREFIX"], [eu_cert]), n)}, rounds)["verify"]
        report["eu_hc1_verify_es256"].pop("rounds_per_s")
    es256 = report["algorithms"]["ES256"]
    verify_best = es256["verify"]["best_per_s"]
    # The target is read on "verify": the signer caches (keyring, protected header) are per
    # signer, not per code, so every code of a known signer finds them warm; the cold figure
    # is the first code after a restart or a new trust list.
    # Read on the paired median (see paired_ratio); best over best is kept for comparison
    # with earlier runs.
    ratio = es256["verify_over_bare_paired"]
    cold_ratio = es256["verify_cold_over_bare_paired"]
    best_ratio = round(verify_best / es256["bare_signature_check"]["best_per_s"], 3)
    report["target"] = {"verify_es256_per_s": VERIFY_TARGET_PER_SECOND,
                        "met": verify_best >= VERIFY_TARGET_PER_SECOND,
                        # issue 17: a ratio to the bare ES256 check of the same run
                        "verify_over_bare_es256": ratio, "ratio_target": VERIFY_RATIO_TARGET,
                        "cold_caches_verify_over_bare_es256": cold_ratio,
                        "best_over_best": best_ratio,
                        "ratio_met": ratio >= VERIFY_RATIO_TARGET}
    return report


def row(label: str, figure: dict) -> str:
    return (f"{label:34s} {figure['best_per_s']:9.0f} {figure['median_per_s']:9.0f} "
            f"{figure['best_us']:9.1f} {figure['n']:6d}")


def table(report: dict) -> str:
    lines = [f"{'operation':34s} {'best/s':>9s} {'median/s':>9s} {'best us':>9s} {'n':>6s}"]
    for alg, figures in report["algorithms"].items():
        for name, figure in figures.items():
            if not isinstance(figure, dict) or name == "code":
                continue
            lines.append(row(f"{alg} {name}", figure))
    if "eu_hc1_verify_es256" in report:
        figure = report["eu_hc1_verify_es256"]
        lines.append(row("EU HC1 verify (ES256, no clock)", figure))
    for alg, figures in report["algorithms"].items():
        code = figures["code"]
        lines.append(f"{alg} code: {code['digits']} digits, {code['cose_bytes']} COSE bytes, "
                     f"QR {code['qr_version']}; verify costs "
                     f"{figures['verify_cost_over_bare_check']}x the bare signature check")
    target = report["target"]
    lines.append(f"target verify ES256 >= {target['verify_es256_per_s']}/s: "
                 f"{'met' if target['met'] else 'NOT met'}")
    lines.append(f"target verify ES256 >= {target['ratio_target']} of the bare ES256 check "
                 f"(same run): {target['verify_over_bare_es256']}, "
                 f"{'met' if target['ratio_met'] else 'NOT met'} (median of per-round pairs; "
                 f"cold caches: {target['cold_caches_verify_over_bare_es256']}; best over "
                 f"best: {target['best_over_best']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000,
                        help=f"operations per round (issue and render: n / {ISSUE_SHARE})")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure")
    parser.add_argument("--cpu", type=int, default=None,
                        help="pin to this core (the work is single-threaded either way)")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    report = run(args.n, args.rounds)
    print(json.dumps(report, indent=2))
    print()
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
