"""Issue 16 (h): the device install and the image build the same way (deploy/build.sh).

The install script runs into a temporary root (offline: the project as a wheel, no
dependencies), shellcheck checks the scripts and `systemd-analyze verify` the units. Locally a
missing tool skips with the reason; under CI (CI=true, set by .ci/run, which installs them)
it fails.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted(
    (DEPLOY / "systemd").glob("*.timer"))
SCRIPTS = [DEPLOY / "build.sh", DEPLOY / "install.sh", DEPLOY / "kiosk.sh", ROOT / ".ci" / "run"]
HARDENING = ("ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
             "ProtectHome=yes", "CapabilityBoundingSet=")


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: .ci/run installs the Debian package "
                        f"{package}")
        pytest.skip(f"{name} is not installed (Debian package {package}; .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """deploy/install.sh into a temporary root, from a wheel of this tree, offline."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"  # building writes egg-info: never into the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "screenshots", "*.egg-info", "build", "__pycache__",
        ".pytest_cache", ".ruff_cache", "*.mo"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "--no-build-isolation", "--no-index", "-w", str(work / "dist"),
                            str(source)], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    wheel = next((work / "dist").glob("dmed_edge-*.whl"))
    root = work / "root"
    env = {**os.environ, "DMED_ROOT": str(root), "DMED_SOURCE": str(wheel),
           "PYTHON": sys.executable, "DMED_PIP_ARGS": "--no-deps --no-index",
           "PYBABEL": str(Path(sys.executable).parent / "pybabel")}
    root_cert = work / "national-root.pem"
    root_cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    result = subprocess.run([str(DEPLOY / "install.sh"), "--kiosk",
                             "http://127.0.0.1:8080/ui/kiosk/", "--root-cert", str(root_cert)],
                            env=env, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def site_packages(root: Path) -> Path:
    return next((root / "opt" / "dmed" / "lib").glob("python3.*/site-packages"))


def test_install_lays_out_venv_user_data_config_and_units(installed):
    venv = installed / "opt" / "dmed"
    for script in ("dmed-node", "dmed-provision", "dmed-hub", "dmed-kiosk"):
        assert os.access(venv / "bin" / script, os.X_OK), script
    assert (installed / "var" / "lib" / "dmed").is_dir()
    config = json.loads((installed / "etc" / "dmed" / "dmed-node.json").read_text())
    assert config["DATABASE"].startswith("/var/lib/dmed/")
    sysusers = (installed / "usr" / "lib" / "sysusers.d" / "dmed.conf").read_text()
    assert re.search(r"^u dmed - .* /var/lib/dmed$", sysusers, re.M)
    assert "DMED_KIOSK_URL=http://127.0.0.1:8080/ui/kiosk/" in (
        installed / "etc" / "dmed" / "kiosk.env").read_text()
    for trusted in ("usr/local/share/ca-certificates/dmed-national-root.crt",
                    "etc/dmed/national-root.pem"):  # the terminal set-up step
        assert "BEGIN CERTIFICATE" in (installed / trusted).read_text()
    units = {p.name for p in (installed / "etc" / "systemd" / "system").iterdir()}
    assert units == {u.name for u in UNITS}
    assert "SystemMaxUse=" in (installed / "etc" / "systemd" / "journald.conf.d" /
                               "dmed.conf").read_text()


@pytest.mark.parametrize("package", ["kiosk_ui", "edge_node"])
def test_installed_package_ships_compiled_translations(installed, package):
    """The image's old `pybabel compile -f -q` failed behind `|| true` and compiled in /app
    while the package lived in site-packages: the screens were English only."""
    directory = site_packages(installed) / package / "translations"
    for locale in ("uz", "ru"):
        assert (directory / locale / "LC_MESSAGES" / "messages.mo").is_file()
    catalogue = gettext.translation("messages", str(directory), languages=["uz"])
    source = (ROOT / package / "translations" / "uz" / "LC_MESSAGES" / "messages.po")
    msgid, msgstr = next((i, s) for i, s in re.findall(r'^msgid "(.+)"\nmsgstr "(.+)"$',
                                                       source.read_text(), re.M))
    assert catalogue.gettext(msgid) == msgstr != msgid


def test_dockerfile_builds_with_the_same_script():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "deploy/build.sh /opt/dmed" in dockerfile
    assert "|| true" not in dockerfile and "pybabel" not in dockerfile


def test_units_are_hardened_and_restart():
    server = (DEPLOY / "systemd" / "dmed-node.service").read_text()
    for directive in (*HARDENING, "Restart=on-failure", "StandardOutput=journal"):
        assert directive in server, directive
    kiosk = (DEPLOY / "systemd" / "dmed-kiosk.service").read_text()
    assert "--fingerprint" in (DEPLOY / "kiosk.sh").read_text()
    assert "Restart=always" in kiosk and "WantedBy=graphical.target" in kiosk
    assert "--kiosk" in (DEPLOY / "kiosk.sh").read_text()


def test_shellcheck_passes_on_the_scripts():
    shellcheck = tool("shellcheck", "shellcheck")
    result = subprocess.run([shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout


def test_systemd_analyze_verifies_the_installed_units(installed, tmp_path):
    analyze = tool("systemd-analyze", "systemd")
    # The units name /opt/dmed; point them at the temporary root's copy, which exists.
    for unit in UNITS:
        text = unit.read_text().replace("/opt/dmed/", f"{installed}/opt/dmed/")
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run([analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "not executable" not in result.stderr


def test_systemd_analyze_catches_a_broken_unit(tmp_path):
    analyze = tool("systemd-analyze", "systemd")
    broken = tmp_path / "broken.service"
    broken.write_text("[Service]\nExecStart=/nonexistent/dmed-node serve\nRestart=sometimes\n")
    result = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True,
                            check=False)
    assert result.returncode != 0
