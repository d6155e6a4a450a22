"""SCRAM-SHA-256(-PLUS) against the real binary: an independent Python client (scram_client.py)
and GNU SASL's `gsasl` (SCRAM-SHA-256-PLUS with tls-exporter over STARTTLS, when installed)."""

import imaplib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import PASSWORD  # noqa: E402
from scram_client import Imap, pop3_scram_login, scram_login  # noqa: E402

FAST = "[auth]\nfailure_delay_ms = 0\n"


def plain_login(server, user, password):
    m = imaplib.IMAP4(*server.imap)
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except Exception:
            pass


def scram(server, user, password, **kw):
    conn = Imap(server.imap)
    try:
        return scram_login(conn, user, password, **kw)
    finally:
        conn.close()


def test_scram_after_first_plain_login(make_server):
    server = make_server(extra_config=FAST)
    c = Imap(server.imap)
    assert "AUTH=SCRAM-SHA-256" in c.greeting and "-PLUS" not in c.greeting
    c.close()
    # Accounts made by `user add` have keys at once.
    r = scram(server, "alice", PASSWORD)
    assert r.ok, r.tagged
    assert r.server_final.startswith("v=")
    r = scram(server, "alice", "wrong")
    assert r.tagged == "A NO [AUTHENTICATIONFAILED] Authentication failed.", r.tagged


def test_unknown_user_is_answered_like_a_known_one(make_server):
    server = make_server(extra_config=FAST)
    a = scram(server, "nobody", "x")
    b = scram(server, "nobody", "x")
    known = scram(server, "alice", "x")
    assert a.tagged == known.tagged == "A NO [AUTHENTICATIONFAILED] Authentication failed."
    assert a.salt == b.salt, "the same stand-in salt every time"
    assert len(a.salt) == len(known.salt)
    # Stable across a restart too (the secret is stored).
    server.stop()
    server.start()
    assert scram(server, "nobody", "x").salt == a.salt


def test_wrong_proofs_count_in_the_throttle(make_server):
    # Loopback is trusted by default: trust nothing here, block after 3 failures.
    server = make_server(extra_config=FAST + "trusted_networks = []\nthrottle_ip_failures = 3\n"
                         "throttle_delay_ms = 0\n")
    for _ in range(3):
        assert not scram(server, "alice", "wrong").ok
    # Blocked now: even the right proof fails, as a right password would.
    t = time.time()
    r = scram(server, "alice", PASSWORD)
    assert r.tagged == "A NO [AUTHENTICATIONFAILED] Authentication failed.", r.tagged
    assert not plain_login(server, "alice", PASSWORD)
    assert time.time() - t < 10
    log = (server.dir / "server.log").read_text()
    assert 'mechanism=SCRAM-SHA-256' in log and "auth_blocked" in log, log[-2000:]


def test_downgrade_flag_y(make_server):
    # Without TLS there is no -PLUS, so `y` (client could bind) is accepted.
    server = make_server(extra_config=FAST)
    assert scram(server, "alice", PASSWORD, gs2="y,,").ok
    # Over TLS 1.3 we offer -PLUS: a client saying `y` (it thinks we cannot bind) was
    # downgraded by someone on the way, and is refused.
    conn = Imap(server.imap)
    conn.starttls(server.tls_context())
    caps = conn.command("CAPABILITY")
    assert "AUTH=SCRAM-SHA-256-PLUS" in caps[0], caps
    r = scram_login(conn, "alice", PASSWORD, gs2="y,,")
    assert r.tagged == ("A NO [AUTHENTICATIONFAILED] Authentication failed "
                        "(e=server-does-support-channel-binding)."), r.tagged
    # Plain SCRAM-SHA-256 (`n`) is still fine there.
    r = scram_login(conn, "alice", PASSWORD)
    assert r.ok, r.tagged
    conn.close()


GSASL = shutil.which("gsasl")


@pytest.mark.skipif(GSASL is None, reason="gsasl (GNU SASL) is not installed")
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])
def test_gsasl_over_starttls(make_server, mechanism):
    server = make_server(extra_config=FAST)

    def run(password):
        return subprocess.run(
            [GSASL, f"--connect={server.imap[0]}:{server.imap[1]}", "--imap", "--starttls",
             f"--x509-ca-file={server.cert}", "-m", mechanism, "-a", "alice", "-p", password,
             "--verbose", *([] if mechanism.endswith("-PLUS") else ["--no-cb"])],
            input="", capture_output=True, text=True, timeout=30)

    r = run(PASSWORD)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # gsasl checked our v= signature (server trusted) over TLS 1.3.
    assert "Client authentication finished (server trusted)" in out, out
    assert "(TLS1.3)" in out, out
    assert f"AUTHENTICATE {mechanism}" in out, out
    if mechanism.endswith("-PLUS"):
        assert "AUTH=SCRAM-SHA-256-PLUS" in out, out
    r = run("wrong")
    assert r.returncode != 0
    assert "NO [AUTHENTICATIONFAILED] Authentication failed." in r.stdout, r.stdout + r.stderr


def test_plus_only_on_tls13(make_server):
    """tls-exporter is safe with TLS 1.3 (and TLS 1.2 only with the extended master secret,
    which rustls does not report): -PLUS is offered on TLS 1.3 connections only, implicit TLS
    or STARTTLS."""
    import socket
    import ssl

    server = make_server(extra_config=FAST)

    def greeting_over_imaps(max_version):
        ctx = server.tls_context()
        ctx.maximum_version = max_version
        with socket.create_connection(server.imaps, timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                f = s.makefile("rb")
                return s.version(), f.readline().decode()

    version, greeting = greeting_over_imaps(ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3" and "AUTH=SCRAM-SHA-256-PLUS" in greeting, greeting
    version, greeting = greeting_over_imaps(ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2", version
    assert "AUTH=SCRAM-SHA-256-PLUS" not in greeting and "AUTH=SCRAM-SHA-256" in greeting, greeting
    ctx = server.tls_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    conn = Imap(server.imap)
    conn.starttls(ctx)
    caps = conn.command("CAPABILITY")[0]
    assert "AUTH=SCRAM-SHA-256" in caps and "-PLUS" not in caps, caps
    # `y` is fine there: we cannot bind on TLS 1.2.
    assert scram_login(conn, "alice", PASSWORD, gs2="y,,").ok
    conn.close()


MBSYNC = shutil.which("mbsync")


@pytest.mark.skipif(MBSYNC is None, reason="mbsync (isync) is not installed")
@pytest.mark.parametrize("tls", ["None", "STARTTLS"])
def test_mbsync_cyrus_sasl_scram(make_server, tls):
    """isync's mbsync logs in through Cyrus SASL's SCRAM module (libsasl2-modules); Cyrus
    gives it no channel binding, so SCRAM-SHA-256 (`n,,`) over STARTTLS too."""
    server = make_server(extra_config=FAST)
    maildir = server.dir / "maildir"
    maildir.mkdir()

    def sync(password):
        rc = server.dir / "mbsyncrc"
        rc.write_text(
            f"IMAPAccount t\nHost {server.imap[0]}\nPort {server.imap[1]}\nUser alice\n"
            f'Pass "{password}"\nAuthMechs SCRAM-SHA-256\nSSLType {tls}\n'
            + (f"CertificateFile {server.cert}\n" if tls != "None" else "")
            + "\nIMAPStore remote\nAccount t\n\n"
            f"MaildirStore local\nPath {maildir}/\nInbox {maildir}/INBOX\n\n"
            "Channel c\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Near\nSyncState *\n")
        return subprocess.run([MBSYNC, "-V", "-c", str(rc), "c"], capture_output=True,
                              stdin=subprocess.DEVNULL,
                              text=True, timeout=60)

    r = sync(PASSWORD)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Authenticating with SASL mechanism SCRAM-SHA-256" in out, out
    r = sync("wrong")
    out = r.stdout + r.stderr
    # The tagged NO at once: mbsync reports it and ends (after an `e=` challenge it waited
    # forever for the server).
    assert r.returncode != 0 and "AUTHENTICATIONFAILED" in out, out


def test_pop3_scram(make_server):
    server = make_server(extra_config=FAST + '[pop3]\nlisten = ["127.0.0.1:0"]\n',
                         wait_for=("pop3",))
    assert pop3_scram_login(server.pop3, "alice", PASSWORD).startswith("+OK Logged in")
    assert pop3_scram_login(server.pop3, "alice", "wrong") == "-ERR [AUTH] Authentication failed."
    assert pop3_scram_login(server.pop3, "nobody", "x") == "-ERR [AUTH] Authentication failed."


SHA1 = FAST + "scram_sha1 = true\n"


def test_scram_sha1_is_off_by_default(make_server):
    server = make_server(extra_config=FAST, users=("alice",))
    c = Imap(server.imap)
    assert "AUTH=SCRAM-SHA-1" not in c.greeting, c.greeting
    c.close()
    r = scram(server, "alice", PASSWORD, mechanism="SCRAM-SHA-1")
    assert r.tagged.startswith("A NO") and "Unsupported" in r.tagged, r.tagged


def test_scram_sha1_when_the_setting_asks(make_server):
    server = make_server(extra_config=SHA1, users=("alice",))
    c = Imap(server.imap)
    caps = c.greeting
    c.close()
    # Offered after SCRAM-SHA-256 (clients take the first they know), no -PLUS without TLS.
    assert "AUTH=SCRAM-SHA-256 AUTH=SCRAM-SHA-1 " in caps, caps
    assert "SCRAM-SHA-1-PLUS" not in caps, caps
    # `user add` derived the SHA-1 keys at once; the client checks the server's v= itself.
    r = scram(server, "alice", PASSWORD, mechanism="SCRAM-SHA-1")
    assert r.ok, r.tagged
    assert r.server_final.startswith("v=")
    r = scram(server, "alice", "wrong", mechanism="SCRAM-SHA-1")
    assert r.tagged == "A NO [AUTHENTICATIONFAILED] Authentication failed.", r.tagged
    # SHA-256 goes on working beside it, and the salts differ (two sets of keys).
    a = scram(server, "alice", PASSWORD)
    assert a.ok, a.tagged
    b = scram(server, "alice", PASSWORD, mechanism="SCRAM-SHA-1")
    assert b.ok and a.salt != b.salt
    # An unknown user gets a stable stand-in salt, as with SHA-256.
    n1 = scram(server, "nobody", "x", mechanism="SCRAM-SHA-1")
    n2 = scram(server, "nobody", "x", mechanism="SCRAM-SHA-1")
    assert n1.tagged == n2.tagged == "A NO [AUTHENTICATIONFAILED] Authentication failed."
    assert n1.salt == n2.salt


def test_scram_sha1_keys_come_with_a_password_login(make_server):
    """An account made while the setting was off has no SHA-1 keys: its first PLAIN login with
    the setting on derives them; a new password drops them and the next login brings them."""
    server = make_server(extra_config=FAST, users=("alice",))
    server.stop()
    with open(server.config, "a") as f:
        f.write("scram_sha1 = true\n")
    server.start()
    assert not scram(server, "alice", PASSWORD, mechanism="SCRAM-SHA-1").ok
    assert plain_login(server, "alice", PASSWORD)
    r = scram(server, "alice", PASSWORD, mechanism="SCRAM-SHA-1")
    assert r.ok, r.tagged


@pytest.mark.skipif(GSASL is None, reason="gsasl (GNU SASL) is not installed")
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"])
def test_gsasl_scram_sha1(make_server, mechanism):
    server = make_server(extra_config=SHA1, users=("alice",))
    r = subprocess.run(
        [GSASL, f"--connect={server.imap[0]}:{server.imap[1]}", "--imap", "--starttls",
         f"--x509-ca-file={server.cert}", "-m", mechanism, "-a", "alice", "-p", PASSWORD,
         "--verbose", *([] if mechanism.endswith("-PLUS") else ["--no-cb"])],
        input="", capture_output=True, text=True, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Client authentication finished (server trusted)" in out, out
    assert f"AUTHENTICATE {mechanism}" in out, out


def test_pop3_scram_sha1(make_server):
    server = make_server(extra_config=SHA1 + '[pop3]\nlisten = ["127.0.0.1:0"]\n',
                         users=("alice",), wait_for=("pop3",))
    ok = pop3_scram_login(server.pop3, "alice", PASSWORD, mechanism="SCRAM-SHA-1")
    assert ok.startswith("+OK Logged in"), ok
    bad = pop3_scram_login(server.pop3, "alice", "wrong", mechanism="SCRAM-SHA-1")
    assert bad == "-ERR [AUTH] Authentication failed."
    conn = Imap(server.pop3)
    conn.send("CAPA")
    lines = [conn.line()]
    while lines[-1] != ".":
        lines.append(conn.line())
    conn.close()
    assert "SASL SCRAM-SHA-256 SCRAM-SHA-1 PLAIN LOGIN" in lines, lines
