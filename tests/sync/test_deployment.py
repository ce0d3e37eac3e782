"""docker-compose.yml describes the deployment: hub on PostgreSQL, a clinic and a pharmacy.
No Docker engine runs here; where `docker compose` exists, it validates the file too."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from central_hub.config import SETTINGS as HUB_SETTINGS
from edge_node.web.config import SETTINGS as NODE_SETTINGS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_services_and_their_wiring(compose):
    services = compose["services"]
    assert {"postgres", "provision", "hub", "clinic", "pharmacy"} <= set(services)
    assert services["hub"]["environment"]["DMED_HUB_DATABASE"].startswith("postgresql://")
    for node in ("clinic", "pharmacy"):
        env = services[node]["environment"]
        assert env["DMED_HUB_URL"] == "http://hub:8000"
        assert "--bundle /pki/" in services[node]["command"][-1]
    assert "--kind clinic" in services["provision"]["command"][-1]
    assert "--kind pharmacy" in services["provision"]["command"][-1]


def test_settings_named_in_compose_exist(compose):
    for service in ("hub", "clinic", "pharmacy"):
        for name in compose["services"][service]["environment"]:
            prefix, settings = (("DMED_HUB_", HUB_SETTINGS) if service == "hub"
                                else ("DMED_", NODE_SETTINGS))
            assert name.removeprefix(prefix) in settings, name


def test_no_secret_is_committed(compose):
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD")


def test_commands_used_in_compose_exist():
    from click.testing import CliRunner

    from central_hub.cli import main as hub
    from edge_node.cli import main as node
    from provisioning.cli import main as provision
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for cli, prefix in ((node, "dmed-node"), (hub, "dmed-hub"), (provision, "dmed-provision")):
        for word in {line.split(prefix + " ", 1)[1].split()[0]
                     for line in text.splitlines() if prefix + " " in line}:
            assert word in cli.commands, f"{prefix} {word}"
            assert CliRunner().invoke(cli, [word, "--help"]).exit_code == 0


@pytest.mark.skipif(not shutil.which("docker"), reason="no docker client")
def test_docker_compose_config_accepts_the_file():
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("docker compose plugin not installed")
    result = subprocess.run(["docker", "compose", "config", "--quiet"], cwd=ROOT,
                            env={"POSTGRES_PASSWORD": "x", "PATH": "/usr/bin:/bin"},
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
