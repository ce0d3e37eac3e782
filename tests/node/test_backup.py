"""Issue 16 (f): dmed-node backup / restore: an online copy sealed to the region's backup key."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from edge_node import backup as backups
from edge_node import enrolment
from edge_node.cli import main as node_cli
from edge_node.seed import seed_demo
from edge_node.services import patients, staff
from edge_node.store import NodeStore
from provisioning import CaStore
from provisioning.backup_keys import PRIVATE_FILE, add_backup_key
from provisioning.enrolment_desk import EnrolmentDesk
from provisioning.facilities import add_facility
from sync_protocol.certificates import NodeIdentity

CLINIC = dict(code="TAS-POL-012", kind="clinic", region="TAS",
              names={"uz": "12-son poliklinika", "ru": "Поликлиника № 12", "en": "Polyclinic 12"},
              address="Bunyodkor 12", district="Chilonzor", opening_hours={"mon": "08:00-17:00"})


@pytest.fixture
def region(tmp_path, monkeypatch):
    monkeypatch.delenv("DMED_BACKUP_PASSPHRASE", raising=False)
    store = CaStore(tmp_path / "ca")
    store.init_root("Root")
    store.add_region("TAS", "Toshkent shahri")
    store.add_region("SAM", "Samarqand")
    add_facility(store, **CLINIC)
    add_backup_key(store, "TAS")
    add_backup_key(store, "SAM")
    return store


@pytest.fixture
def node(tmp_path, region):
    """A clinic enrolled through the desk (the answer brings the backup key), seeded."""
    desk = EnrolmentDesk(region)
    data_dir = tmp_path / "node"
    pending = enrolment.start(data_dir, NodeIdentity("tas-pol-012-a", "TAS-POL-012", "TAS",
                                                     "clinic"))
    desk.receive(pending.request, "127.0.0.1")
    enrolment.install_answer(data_dir, desk.approve(pending.request_id, code=pending.code,
                                                    facility_code="TAS-POL-012", actor="op"))
    db = data_dir / "node.db"
    assert CliRunner().invoke(node_cli, ["init", "--db", str(db)]).exit_code == 0
    store = NodeStore(db)
    seed_demo(store, code="TAS-POL-012", days=1)
    return store


def key(region, code="TAS"):
    return (region.directory / "regions" / code / PRIVATE_FILE).read_bytes()


def events_of(store):
    return [(e.origin, e.seq, e.hash) for e in store.events()]


def test_backup_while_the_node_writes_restores_a_consistent_verified_log(node, region,
                                                                         tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(backups, "CHUNK_BYTES", 4096)  # many chunks, as a big database has
    public = (tmp_path / "node" / "enrolment" / backups.BACKUP_KEY_FILE).read_bytes()
    facility = node.facility_id
    registrar = staff.actor_for_staff(node.one("SELECT * FROM staff WHERE username = ?",
                                               ("registrar",)))
    stop = threading.Event()

    def keep_writing():
        n = 0
        while not stop.is_set():
            patients.register_patient(node, registrar, full_name=f"Writer Patient {n}",
                                      phone="+998901112233", facility_id=facility,
                                      document=f"AB{n:07d}", birth_date="1990-01-01",
                                      sex="male")
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        info = backups.backup(node, tmp_path / "usb", public)
    finally:
        stop.set()
        writer.join()
    assert b"Rahimov Bobur" not in info.path.read_bytes()  # sealed, not a plain copy
    restored_db = tmp_path / "restored" / "node.db"
    result = backups.restore(info.path, key(region), restored_db)
    restored = NodeStore(restored_db)
    copied = events_of(restored)
    assert copied == events_of(node)[:len(copied)]  # a prefix of the live log: consistent
    assert result["origins"] == {"tas-pol-012-a": len(copied)}
    assert restored.one("SELECT code FROM facilities")["code"] == "TAS-POL-012"


def test_restore_refuses_wrong_key_damage_truncation_and_an_existing_target(node, region,
                                                                            tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr(backups, "CHUNK_BYTES", 4096)
    public = (tmp_path / "node" / "enrolment" / backups.BACKUP_KEY_FILE).read_bytes()
    info = backups.backup(node, tmp_path / "usb", public)
    data = info.path.read_bytes()
    with pytest.raises(backups.BackupError, match="another region"):
        backups.restore(info.path, key(region, "SAM"), tmp_path / "a.db")
    damaged = tmp_path / "damaged.dmedbak"
    damaged.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
    with pytest.raises(backups.BackupError, match="damaged or was changed"):
        backups.restore(damaged, key(region), tmp_path / "b.db")
    cut = tmp_path / "cut.dmedbak"
    cut.write_bytes(data[:-(4096 + 16)] if len(data) > 3 * 4096 else data[:-10])
    with pytest.raises(backups.BackupError):
        backups.restore(cut, key(region), tmp_path / "c.db")
    existing = tmp_path / "exists.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(backups.BackupError, match="exists"):
        backups.restore(info.path, key(region), existing)
    assert existing.read_bytes() == b"keep me"
    assert not any((tmp_path / n).exists() for n in ("a.db", "b.db", "c.db"))


def test_backup_and_restore_commands_keep_the_newest_copies(node, region, tmp_path):
    runner = CliRunner()
    usb = tmp_path / "usb"
    for _ in range(3):
        result = runner.invoke(node_cli, ["backup", "--db", str(node.path), "--out", str(usb),
                                          "--keep", "2"])
        assert result.exit_code == 0, result.output
        # each copy has its own second in the name; make the next one newer
        newest = sorted(usb.glob("*.dmedbak"))[-1]
        newest.rename(newest.with_name(newest.name.replace("Z.", f"{_}Z.")))
    assert len(list(usb.glob("*.dmedbak"))) == 2
    restored = tmp_path / "r" / "node.db"
    result = runner.invoke(node_cli, ["restore", "--backup", str(sorted(usb.glob("*"))[-1]),
                                      "--key", str(region.directory / "regions" / "TAS" /
                                                   PRIVATE_FILE), "--db", str(restored)])
    assert result.exit_code == 0, result.output
    assert "log verified (tas-pol-012-a up to" in result.output
    assert NodeStore(restored).one("SELECT COUNT(*) AS n FROM patients")["n"] == 4
    bare = tmp_path / "bare.db"  # a node without enrolment has no backup key
    assert runner.invoke(node_cli, ["init", "--db", str(bare), "--node-id", "n"]).exit_code == 0
    no_key = runner.invoke(node_cli, ["backup", "--db", str(bare), "--out", str(usb)])
    assert no_key.exit_code == 1 and "--key" in no_key.output


def test_housekeeping_folds_the_wal_back(node, tmp_path):
    wal = node.path.with_name(node.path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0  # seeding wrote through the WAL
    node.close()  # the server's connections are idle at night
    result = CliRunner().invoke(node_cli, ["housekeeping", "--db", str(node.path)])
    assert result.exit_code == 0, result.output
    assert not wal.exists() or wal.stat().st_size == 0
    assert NodeStore(node.path).one("SELECT COUNT(*) AS n FROM patients")["n"] == 4
