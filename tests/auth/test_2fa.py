"""`mailkeep user 2fa enable|disable|status`: the confirmation code is computed here from the
printed otpauth:// secret; once on, the main password stops working over IMAP and POP3 (also
through SCRAM) and only app passwords (and a recovery code, once) log in."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mkserver import PASSWORD  # noqa: E402
from scram_client import Imap, scram_login  # noqa: E402
from twofa_helpers import (  # noqa: E402
    add_app_password, enable_2fa, imap_ok, pop3_ok, pop3_server,
)


@pytest.fixture
def srv():
    s = pop3_server()
    yield s
    s.cleanup()


def test_enable_refuses_main_password_imap_and_pop3(srv):
    assert imap_ok(srv, "alice", PASSWORD)
    out, err, rc, secret, codes = enable_2fa(srv, "alice")
    assert rc == 0, err
    assert len(secret) == 32
    assert "\u2580" in out or "\u2584" in out or "\u2588" in out, "a QR code in block characters"
    assert len(codes) == 10 and len(set(codes)) == 10
    assert "two-factor on" in srv.cli("user", "2fa", "status", "alice").stdout
    assert not imap_ok(srv, "alice", PASSWORD), "main password refused over IMAP"
    assert not pop3_ok(srv, "alice", PASSWORD), "main password refused over POP3"
    app = add_app_password(srv, "alice", "Phone")
    assert imap_ok(srv, "alice", app)
    assert pop3_ok(srv, "alice", app)
    # Another account is not concerned.
    assert imap_ok(srv, "bob", PASSWORD)


def scram(server, user, password):
    conn = Imap(server.imap)
    try:
        return scram_login(conn, user, password)
    finally:
        conn.close()


def test_scram_refused_with_2fa(srv):
    assert scram(srv, "alice", PASSWORD).ok, "SCRAM works before"
    assert enable_2fa(srv, "alice")[2] == 0
    r = scram(srv, "alice", PASSWORD)
    assert not r.ok and "AUTHENTICATIONFAILED" in r.tagged


def test_wrong_code_keeps_it_off(srv):
    out, err, rc, secret, codes = enable_2fa(srv, "alice", code="12345x")
    assert rc != 0 and "wrong code" in err
    assert codes == []
    assert "waiting for its first code" in srv.cli("user", "2fa", "status", "alice").stdout
    assert imap_ok(srv, "alice", PASSWORD)
    # A second enable starts over and works.
    assert enable_2fa(srv, "alice")[2] == 0
    assert not imap_ok(srv, "alice", PASSWORD)


def test_recovery_code_logs_in_once(srv):
    codes = enable_2fa(srv, "alice")[4]
    assert imap_ok(srv, "alice", codes[0])
    assert not imap_ok(srv, "alice", codes[0]), "used up"
    assert pop3_ok(srv, "alice", codes[1].upper().replace("-", " "))
    assert "recovery codes left 8" in srv.cli("user", "2fa", "status", "alice").stdout
    # Without 2FA a code-shaped password is only a (wrong) password.
    assert not imap_ok(srv, "bob", codes[2])


def test_disable_brings_the_main_password_back(srv):
    assert enable_2fa(srv, "alice")[2] == 0
    app = add_app_password(srv, "alice", "Laptop")
    assert not imap_ok(srv, "alice", PASSWORD)
    r = srv.cli("user", "2fa", "disable", "alice")
    assert r.returncode == 0 and "off" in r.stdout
    assert imap_ok(srv, "alice", PASSWORD)
    assert imap_ok(srv, "alice", app), "app passwords stay"
    assert "two-factor off" in srv.cli("user", "2fa", "status", "alice").stdout
    # Enabling twice is refused while on.
    assert enable_2fa(srv, "alice")[2] == 0
    r = srv.cli("user", "2fa", "enable", "alice", input="")
    assert r.returncode != 0 and "already on" in r.stderr


def test_unknown_user(srv):
    r = srv.cli("user", "2fa", "enable", "nobody", input="123456\n")
    assert r.returncode != 0 and "no such account" in r.stderr


def test_turning_2fa_on_ends_main_password_sessions(srv):
    """Sessions opened with the main password (PLAIN over IMAP, USER/PASS over POP3, SCRAM)
    end at their next command once two-factor is on; app-password sessions go on."""
    import imaplib
    import poplib
    import time

    from twofa_helpers import imap_login, pop3_login

    m = imap_login(srv, "alice", PASSWORD)
    p = pop3_login(srv, "alice", PASSWORD)
    conn = Imap(srv.imap)
    assert scram_login(conn, "alice", PASSWORD).ok
    bob = imap_login(srv, "bob", PASSWORD)
    app = add_app_password(srv, "alice", "Phone")
    on_app = imap_login(srv, "alice", app)
    assert enable_2fa(srv, "alice")[2] == 0
    time.sleep(1.1)
    with pytest.raises(imaplib.IMAP4.abort) as e:
        m.noop()
    assert "[EXPIRED]" in str(e.value) and "Two-factor" in str(e.value), e.value
    with pytest.raises(poplib.error_proto) as e:
        p.stat()
    assert b"[AUTH]" in e.value.args[0] and b"Two-factor" in e.value.args[0]
    r = conn.command("NOOP")
    assert r[0].startswith("* BYE [EXPIRED]"), r
    conn.close()
    assert on_app.noop()[0] == "OK", "an app-password session goes on"
    assert bob.noop()[0] == "OK", "another account is not concerned"
    on_app.logout()
    bob.logout()
