"""`mailkeep app-password add|list|revoke`: per-device passwords, with or without two-factor;
a revoked one stops working at once, for open IMAP and POP3 sessions at their next command
(`BYE` and close), and a login costs no argon2 hash however many an account has."""

import imaplib
import poplib
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mkserver import PASSWORD, assert_responsive  # noqa: E402
from twofa_helpers import (  # noqa: E402
    add_app_password, enable_2fa, imap_login, imap_ok, pop3_login, pop3_ok, pop3_server,
)


@pytest.fixture
def srv():
    s = pop3_server()
    yield s
    s.cleanup()


def test_without_2fa_both_work_and_list_shows_use(srv):
    phone = add_app_password(srv, "alice", "Phone")
    laptop = add_app_password(srv, "alice", "Laptop")
    assert phone != laptop
    assert imap_ok(srv, "alice", PASSWORD)
    assert imap_ok(srv, "alice", phone)
    # Spaces and capitals as people copy them.
    spaced = " ".join(laptop[i:i + 4] for i in range(0, 16, 4)).upper()
    assert pop3_ok(srv, "alice", spaced)
    assert not imap_ok(srv, "bob", phone), "only the account's own"
    lines = srv.cli("app-password", "list", "alice").stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["Phone", "Laptop"]
    assert all("last used" in line for line in lines), lines
    assert srv.cli("app-password", "list", "bob").stdout == ""
    # Labels are unique per account; unknown accounts are refused.
    r = srv.cli("app-password", "add", "alice", "Phone")
    assert r.returncode != 0 and "already has" in r.stderr
    r = srv.cli("app-password", "add", "nobody", "Phone")
    assert r.returncode != 0 and "no such account" in r.stderr


def test_revoke_ends_open_imap_session(srv):
    assert enable_2fa(srv, "alice")[2] == 0
    app = add_app_password(srv, "alice", "Phone")
    m = imap_login(srv, "alice", app)
    assert m is not None
    m.select("INBOX")
    other = imap_login(srv, "alice", add_app_password(srv, "alice", "Tablet"))
    r = srv.cli("app-password", "revoke", "alice", "Phone")
    assert r.returncode == 0, r.stderr
    time.sleep(1.1)
    with pytest.raises(imaplib.IMAP4.abort) as e:
        m.noop()
    assert "[EXPIRED]" in str(e.value) and "revoked" in str(e.value)
    assert not imap_ok(srv, "alice", app), "a new login fails"
    # The session of another app password goes on.
    assert other.noop()[0] == "OK"
    other.logout()
    assert srv.cli("app-password", "revoke", "alice", "Phone").returncode != 0
    assert_responsive(srv)


def test_revoke_ends_open_pop3_session(srv):
    app = add_app_password(srv, "alice", "Phone")
    p = pop3_login(srv, "alice", app)
    assert p is not None
    p.stat()
    assert srv.cli("app-password", "revoke", "alice", "Phone").returncode == 0
    time.sleep(1.1)
    with pytest.raises(poplib.error_proto) as e:
        p.stat()
    assert b"revoked" in e.value.args[0]
    p.close()
    assert not pop3_ok(srv, "alice", app)
    assert pop3_ok(srv, "alice", PASSWORD), "without 2FA the main password still works"


def login_seconds(server, user, password, n):
    start = time.monotonic()
    for _ in range(n):
        assert imap_ok(server, user, password)
    return (time.monotonic() - start) / n


def test_many_app_passwords_cost_no_hash(srv):
    apps = [add_app_password(srv, "alice", f"Device {i}") for i in range(20)]
    # A login with the last of 20 app passwords is one keyed hash and one lookup; an argon2
    # login (the login cache is for the main password only) costs a hash each time.
    app = login_seconds(srv, "alice", apps[-1], 10)
    print(f"app password login: {app * 1000:.1f} ms")
    assert app < 0.5
    assert imap_ok(srv, "alice", apps[0])


def test_revoke_ends_an_idle_session(srv):
    """A client IDLE-ing with an app password gets `BYE [EXPIRED]` while still in IDLE (the
    server asks every 15 s), not only at its next command after DONE."""
    import socket

    app = add_app_password(srv, "alice", "Phone")
    s = socket.create_connection(srv.imap, timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN alice {app}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    while not f.readline().startswith(b"+ "):
        pass
    assert srv.cli("app-password", "revoke", "alice", "Phone").returncode == 0
    start = time.monotonic()
    line = f.readline()
    took = time.monotonic() - start
    assert line.startswith(b"* BYE [EXPIRED]"), line
    assert took < 20, took
    assert f.readline() == b"", "the connection is closed"
    s.close()
