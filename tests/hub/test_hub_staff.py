"""Hub staff accounts (central_hub.staff): creation, password sign-in, the lock after wrong
passwords (kept in the database, so every hub worker agrees), the shared session secret, and
the commands `dmed-hub create-staff`, `list-staff`, `staff-password`, `disable-staff` and
`enable-staff`."""

import logging
from datetime import timedelta

import pytest
from click.testing import CliRunner

from central_hub import staff
from central_hub.cli import main
from central_hub.composition import open_storage
from sync_protocol.timeutil import utc_now

PASSWORD = "correct horse battery"


@pytest.fixture
def account(storage):
    return staff.create_staff(storage, login="Karimova", full_name="  Karimova   Nilufar ",
                              role="central", password=PASSWORD)


def row_of(storage, login):
    with storage.reader() as tx:
        return tx.one("SELECT * FROM hub_staff WHERE login = ?", (login,))


def test_an_account_signs_in_and_its_password_is_stored_only_as_a_hash(storage, account):
    assert (account["login"], account["full_name"], account["role"]) == (
        "karimova", "Karimova Nilufar", "central")
    assert "password_hash" not in account
    row = row_of(storage, "karimova")
    assert row["password_hash"].startswith("$argon2id$")
    assert all(PASSWORD not in str(value) for value in row.values())
    signed_in = staff.authenticate(storage, " KARIMOVA ", PASSWORD)
    assert signed_in["staff_id"] == account["staff_id"]
    assert staff.display_name(signed_in) == "Karimova Nilufar (karimova)"
    assert staff.get_staff(storage, account["staff_id"])["login"] == "karimova"


@pytest.mark.parametrize(("changes", "field"), [
    ({"login": "ab"}, "login"), ({"login": "has space"}, "login"),
    ({"login": "-lead"}, "login"), ({"login": "x" * 65}, "login"),
    ({"login": "ali\u0435v"}, "login"),  # a Cyrillic "e" among Latin letters
    ({"full_name": "K"}, "full_name"), ({"full_name": "K" * 121}, "full_name"),
    ({"password": "short pwd"}, "password"), ({"password": None}, "password"),
    ({"role": "admin"}, "role")])
def test_bad_account_details_are_refused_with_the_field(storage, changes, field):
    details = {"login": "aliyev.s", "full_name": "Aliyev Sardor", "role": "central",
               "password": PASSWORD, **changes}
    with pytest.raises(staff.StaffError) as caught:
        staff.create_staff(storage, **details)
    assert caught.value.field == field
    with storage.reader() as tx:
        assert tx.scalar("SELECT COUNT(*) AS n FROM hub_staff") == 0


def test_a_login_is_taken_once_whatever_its_case(storage, account):
    with pytest.raises(staff.LoginTaken):
        staff.create_staff(storage, login="KARIMOVA", full_name="Other Person", role="central",
                           password=PASSWORD)


def test_a_wrong_password_and_an_unknown_login_fail_alike(storage, account, monkeypatch):
    checked = []
    real = staff._matches

    def spy(password_hash, password):
        checked.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(staff, "_matches", spy)
    with pytest.raises(staff.SignInFailed) as wrong:
        staff.authenticate(storage, "karimova", "wrong password!")
    with pytest.raises(staff.SignInFailed) as unknown:
        staff.authenticate(storage, "nobody", PASSWORD)
    assert type(wrong.value) is type(unknown.value) is staff.SignInFailed
    assert wrong.value.text == unknown.value.text == "Wrong login or password"
    # the unknown login was verified too: against the dummy hash
    assert checked == [row_of(storage, "karimova")["password_hash"], staff._dummy_hash()]
    assert row_of(storage, "karimova")["failed_count"] == 1


def test_five_wrong_passwords_lock_the_login_for_fifteen_minutes(storage, storage_url, account):
    now = utc_now()
    for _ in range(staff.MAX_FAILURES - 1):
        with pytest.raises(staff.SignInFailed) as caught:
            staff.authenticate(storage, "karimova", "wrong password!", now=now)
        assert not isinstance(caught.value, staff.LoginLocked)
    with pytest.raises(staff.LoginLocked):
        staff.authenticate(storage, "karimova", "wrong password!", now=now)
    # locked: even the right password is refused, by this worker and by another one
    with pytest.raises(staff.LoginLocked):
        staff.authenticate(storage, "karimova", PASSWORD, now=now + timedelta(minutes=14))
    with open_storage(storage_url) as other:  # as a second hub worker process would
        with pytest.raises(staff.LoginLocked):
            staff.authenticate(other, "karimova", PASSWORD, now=now + timedelta(minutes=10))
    assert row_of(storage, "karimova")["locked_until"] is not None
    later = now + staff.LOCK_DURATION + timedelta(seconds=1)
    assert staff.authenticate(storage, "karimova", PASSWORD, now=later)["login"] == "karimova"
    row = row_of(storage, "karimova")
    assert (row["failed_count"], row["locked_until"]) == (0, None)


def test_a_successful_sign_in_resets_the_count(storage, account):
    for _ in range(staff.MAX_FAILURES - 1):
        with pytest.raises(staff.SignInFailed):
            staff.authenticate(storage, "karimova", "wrong password!")
    staff.authenticate(storage, "karimova", PASSWORD)
    assert row_of(storage, "karimova")["failed_count"] == 0
    for _ in range(staff.MAX_FAILURES - 1):  # four more wrong ones do not lock yet
        with pytest.raises(staff.SignInFailed) as caught:
            staff.authenticate(storage, "karimova", "wrong password!")
        assert not isinstance(caught.value, staff.LoginLocked)
    assert staff.authenticate(storage, "karimova", PASSWORD)["login"] == "karimova"


def test_a_disabled_account_cannot_sign_in(storage, account):
    with storage.transaction(exclusive=False) as tx:
        tx.execute("UPDATE hub_staff SET disabled = 1 WHERE staff_id = ?",
                    (account["staff_id"],))
    with pytest.raises(staff.SignInFailed):
        staff.authenticate(storage, "karimova", PASSWORD)
    assert staff.get_staff(storage, account["staff_id"]) is None


def test_a_new_password_replaces_the_old_one_lifts_the_lock_and_ends_sessions(storage,
                                                                              account):
    for _ in range(staff.MAX_FAILURES - 1):
        with pytest.raises(staff.SignInFailed):
            staff.authenticate(storage, "karimova", "wrong password!")
    with pytest.raises(staff.LoginLocked):
        staff.authenticate(storage, "karimova", "wrong password!")
    epoch = row_of(storage, "karimova")["session_epoch"]
    staff.set_password(storage, " KARIMOVA ", "a brand new passphrase")
    row = row_of(storage, "karimova")
    assert row["session_epoch"] == epoch + 1 and row["locked_until"] is None
    assert "a brand new passphrase" not in str(row.values())
    with pytest.raises(staff.SignInFailed):
        staff.authenticate(storage, "karimova", PASSWORD)
    assert staff.authenticate(storage, "karimova", "a brand new passphrase")["session_epoch"] \
        == epoch + 1


def test_disabling_and_enabling_move_the_session_epoch(storage, account):
    staff.set_disabled(storage, "karimova", True)
    assert staff.get_staff(storage, account["staff_id"]) is None
    [listed] = staff.list_staff(storage)
    assert listed["disabled"] is True and listed["session_epoch"] == 1
    with pytest.raises(staff.SignInFailed):
        staff.authenticate(storage, "karimova", PASSWORD)
    staff.set_disabled(storage, "karimova", False)
    assert staff.authenticate(storage, "karimova", PASSWORD)["session_epoch"] == 2


def test_changes_to_an_unknown_login_are_refused_and_change_nothing(storage, account):
    before = row_of(storage, "karimova")
    with pytest.raises(staff.UnknownLogin):
        staff.set_password(storage, "nobody", "a brand new passphrase")
    with pytest.raises(staff.UnknownLogin):
        staff.set_disabled(storage, "nobody", True)
    with pytest.raises(staff.StaffError):  # a short password is refused before any lookup
        staff.set_password(storage, "karimova", "short")
    assert row_of(storage, "karimova") == before


def test_every_worker_shares_one_session_secret(storage, storage_url):
    first = staff.session_secret(storage)
    with open_storage(storage_url) as other:
        assert staff.session_secret(other) == first
    assert len(first) >= 48
    assert staff.session_secret(storage) == first


# -- dmed-hub create-staff ----------------------------------------------------------------

def test_create_staff_reads_the_password_from_the_environment(storage_url, caplog):
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(main, [
        "create-staff", "--db", storage_url, "--login", "aliyev.s", "--name", "Aliyev Sardor",
        "--role", "central"], env={"DMED_HUB_STAFF_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    assert "aliyev.s" in result.output
    assert PASSWORD not in result.output and PASSWORD not in caplog.text
    with open_storage(storage_url) as storage:
        assert staff.authenticate(storage, "aliyev.s", PASSWORD)["full_name"] == "Aliyev Sardor"
    again = CliRunner().invoke(main, [
        "create-staff", "--db", storage_url, "--login", "aliyev.s", "--name", "Aliyev Sardor"],
        env={"DMED_HUB_STAFF_PASSWORD": PASSWORD})
    assert again.exit_code == 1 and "taken" in again.output


def test_create_staff_prompts_twice_without_echo(storage_url):
    runner = CliRunner()
    args = ["create-staff", "--db", storage_url, "--login", "tosheva", "--name", "Tosheva M."]
    env = {"DMED_HUB_STAFF_PASSWORD": None}
    mismatch = runner.invoke(main, args, env=env, input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0
    result = runner.invoke(main, args, env=env, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    with open_storage(storage_url) as storage:
        assert staff.authenticate(storage, "tosheva", PASSWORD)["login"] == "tosheva"


@pytest.mark.parametrize(("option", "value", "message"), [
    ("DMED_HUB_STAFF_PASSWORD", "too short", "10 to 1024 characters"),
    ("--login", "no way", "login must be"), ("--role", "admin", "Invalid value")])
def test_create_staff_refuses_bad_input_and_creates_nothing(storage_url, option, value,
                                                           message):
    args = {"--login": "usmonov", "--name": "Usmonov Jasur", "--role": "central"}
    env = {"DMED_HUB_STAFF_PASSWORD": PASSWORD}
    if option.startswith("--"):
        args[option] = value
    else:
        env[option] = value
    result = CliRunner().invoke(main, ["create-staff", "--db", storage_url,
                                       *[x for pair in args.items() for x in pair]], env=env)
    assert result.exit_code == (2 if option == "--role" else 1)  # 2: click's usage error
    assert message in result.output
    with open_storage(storage_url) as storage, storage.reader() as tx:
        assert tx.scalar("SELECT COUNT(*) AS n FROM hub_staff") == 0


# -- dmed-hub list-staff, staff-password, disable-staff, enable-staff -----------------------

def run(storage_url, *args, password=None):
    env = {"DMED_HUB_STAFF_PASSWORD": password}
    return CliRunner().invoke(main, [args[0], "--db", storage_url, *args[1:]], env=env)


def test_staff_commands_manage_an_account(storage_url, caplog):
    caplog.set_level(logging.DEBUG)
    assert "no staff accounts" in run(storage_url, "list-staff").output
    assert run(storage_url, "create-staff", "--login", "nazarov", "--name", "Nazarov Akmal",
               password=PASSWORD).exit_code == 0
    listed = run(storage_url, "list-staff")
    assert listed.exit_code == 0 and "nazarov\tNazarov Akmal\tcentral\tactive" in listed.output

    disabled = run(storage_url, "disable-staff", "--login", "Nazarov")
    assert disabled.exit_code == 0, disabled.output
    assert "\tdisabled" in run(storage_url, "list-staff").output
    enabled = run(storage_url, "enable-staff", "--login", "nazarov")
    assert enabled.exit_code == 0 and "\tactive" in run(storage_url, "list-staff").output

    changed = run(storage_url, "staff-password", "--login", "nazarov",
                  password="another good passphrase")
    assert changed.exit_code == 0, changed.output
    assert "another good passphrase" not in changed.output + caplog.text
    with open_storage(storage_url) as storage:
        assert staff.authenticate(storage, "nazarov", "another good passphrase")
        with pytest.raises(staff.SignInFailed):
            staff.authenticate(storage, "nazarov", PASSWORD)


def test_staff_commands_refuse_an_unknown_login_or_a_bad_password(storage_url):
    for args in (("disable-staff", "--login", "ghost"), ("enable-staff", "--login", "ghost"),
                 ("staff-password", "--login", "ghost")):
        result = run(storage_url, *args, password=PASSWORD)
        assert result.exit_code == 1 and "No staff account has the login ghost" in result.output
    run(storage_url, "create-staff", "--login", "nazarov", "--name", "Nazarov Akmal",
        password=PASSWORD)
    short = run(storage_url, "staff-password", "--login", "nazarov", password="short")
    assert short.exit_code == 1 and "10 to 1024 characters" in short.output
    with open_storage(storage_url) as storage:
        assert staff.authenticate(storage, "nazarov", PASSWORD)["session_epoch"] == 0
