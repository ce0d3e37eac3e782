"""deploy/alerts.yml is valid and each alert fires when it should and only then
(`promtool test rules deploy/alerts_test.yml`); deploy/prometheus.yml is a valid config.
promtool comes from Debian's prometheus package (.ci/run unpacks it, no server runs); without
it the tests skip here, but fail in CI."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = ("DmedNodeSilent", "DmedRegionSilent", "DmedPendingEventsGrowing",
          "DmedConflictsUnreviewed", "DmedQuarantineGrowing", "DmedProjectionLagging",
          "DmedCertificateExpiring", "DmedClockOffset")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI: .ci/run unpacks Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get download prometheus; dpkg -x; "
                    "PROMTOOL=.../usr/bin/promtool)")
    return found


def run(promtool: str, *args: str, cwd: Path = DEPLOY) -> str:
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rules() -> list[dict]:
    return yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"][0]["rules"]


def test_every_alert_has_a_runbook_in_words_and_a_unit_test():
    tests = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]
              if case.get("exp_alerts")}
    assert [rule["alert"] for rule in rules()] == list(ALERTS)
    for rule in rules():
        assert len(rule["annotations"]["runbook"].split()) >= 30, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
    assert tested == set(ALERTS)


def test_promtool_checks_the_rules(promtool):
    assert "SUCCESS: 8 rules found" in run(promtool, "check", "rules", "alerts.yml")


def test_promtool_unit_tests_of_each_alert_pass(promtool):
    assert "SUCCESS" in run(promtool, "test", "rules", "alerts_test.yml")


def test_a_broken_rule_fails_its_unit_test(promtool, tmp_path):
    broken = (DEPLOY / "alerts.yml").read_text().replace("> 120", "> 1200")
    (tmp_path / "alerts.yml").write_text(broken)
    shutil.copy(DEPLOY / "alerts_test.yml", tmp_path / "alerts_test.yml")
    done = subprocess.run([promtool, "test", "rules", "alerts_test.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "DmedClockOffset" in done.stdout + done.stderr


def test_the_sample_prometheus_config_is_valid(promtool, tmp_path):
    config = (DEPLOY / "prometheus.yml").read_text()
    for name in ("dmed-hub-metrics-token", "dmed-node-metrics-token"):
        (tmp_path / name).write_text("token\n")
        config = config.replace(f"/etc/prometheus/{name}", str(tmp_path / name))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(DEPLOY / "alerts.yml", tmp_path / "alerts.yml")
    run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
