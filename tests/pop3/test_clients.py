"""Real POP3 clients against the real binary: curl (pop3:// with and without STLS, pop3s://),
fetchmail (STLS and implicit TLS) and getmail6 (plain, SSL, and leave-on-server with UIDL)."""

import os
import shutil
import subprocess

import pytest

from conftest import PASSWORD
from test_poplib import DOTTED, deliver, imap_login

FIRST = b"Subject: a\r\n\r\na\r\n"


def inbox_count(server):
    imap = imap_login(server)
    typ, data = imap.select("INBOX")
    imap.logout()
    return int(data[0])


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-u", f"alice:{PASSWORD}", *args],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl(server):
    deliver(server, FIRST, DOTTED)
    plain = f"pop3://127.0.0.1:{server.pop3[1]}"
    assert curl(f"{plain}/") == f"1 {len(FIRST)}\r\n2 {len(DOTTED)}\r\n".encode()
    # curl undoes the byte-stuffing: the message comes back as stored.
    assert curl(f"{plain}/2") == DOTTED
    assert curl("--ssl-reqd", "--cacert", server.cert, f"{plain}/2") == DOTTED
    assert curl("--cacert", server.cert, f"pop3s://127.0.0.1:{server.pop3s[1]}/1") == FIRST
    uidl = curl("-X", "UIDL", f"{plain}/").split(b"\r\n")
    assert len(uidl) == 3 and uidl[2] == b""
    curl("-X", "DELE", "-I", f"{plain}/1")
    assert curl(f"{plain}/") == f"1 {len(DOTTED)}\r\n".encode()
    assert inbox_count(server) == 1


def run_fetchmail(server, tmp_path, implicit_tls):
    port = server.pop3s[1] if implicit_tls else server.pop3[1]
    # Without `ssl` fetchmail upgrades with STLS by itself; tls1.2+ makes it insist on it.
    tls = "ssl" if implicit_tls else "sslproto tls1.2+"
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 protocol pop3 port {port}\n"
        f'  user "alice" there with password "{PASSWORD}" is "root" here\n'
        f'  options {tls} sslcertck sslcommonname localhost sslcertfile "{server.cert}"\n'
    )
    rc.chmod(0o600)  # fetchmail refuses a readable rc file with a password
    out = tmp_path / "out.bsmtp"
    r = subprocess.run(
        ["fetchmail", "-f", str(rc), "--nodetach", "--nosyslog", "-v",
         "-i", str(tmp_path / "fetchids"), "--bsmtp", str(out)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, out.read_bytes()


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail not installed")
@pytest.mark.parametrize("implicit_tls", [False, True], ids=["stls", "pop3s"])
def test_fetchmail(server, tmp_path, implicit_tls):
    deliver(server, FIRST, DOTTED)
    log, out = run_fetchmail(server, tmp_path, implicit_tls)
    assert ("POP3> STLS" in log) != implicit_tls, log
    assert "POP3> QUIT" in log
    # BSMTP output keeps the SMTP dot-stuffing, which equals POP3's.
    assert b"\r\n..starts with a dot\r\n...two dots\r\n..\r\nlast\r\n.\r\n" in out, out
    assert out.count(b"MAIL FROM:") == 2
    # fetchmail deletes what it fetched (no `keep`): gone for IMAP too.
    assert inbox_count(server) == 0


def run_getmail(server, tmp_path, ssl, delete):
    out = tmp_path / "delivered"
    out.mkdir(exist_ok=True)
    if ssl:
        retriever = ("type = SimplePOP3SSLRetriever\n"
                     f"port = {server.pop3s[1]}\nca_certs = {server.cert}\n")
    else:
        retriever = f"type = SimplePOP3Retriever\nport = {server.pop3[1]}\n"
    rc = tmp_path / "getmailrc"
    # An external command: getmail's Maildir/Mbox destinations refuse to run as root.
    rc.write_text(
        f"[retriever]\n{retriever}server = 127.0.0.1\nusername = alice\npassword = {PASSWORD}\n\n"
        "[destination]\ntype = MDA_external\npath = /bin/sh\n"
        f'arguments = ("-c", "cat > {out}/$$.eml")\nallow_root_commands = true\n\n'
        f"[options]\ndelete = {str(delete).lower()}\nread_all = false\nverbose = 1\n"
    )
    r = subprocess.run(["getmail", "--rcfile", str(rc), "--getmaildir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, sorted(p.read_bytes() for p in out.iterdir())


@pytest.mark.skipif(shutil.which("getmail") is None, reason="getmail6 not installed")
@pytest.mark.parametrize("ssl", [False, True], ids=["pop3", "pop3s"])
def test_getmail(server, tmp_path, ssl):
    deliver(server, FIRST, DOTTED)
    log, got = run_getmail(server, tmp_path, ssl, delete=True)
    assert "2 messages" in log, log
    # getmail writes LF line ends and adds its own header lines on top.
    assert len(got) == 2
    assert any(m.endswith(b"Subject: dots\n\n.starts with a dot\n..two dots\n.\nlast\n")
               for m in got), got
    assert inbox_count(server) == 0


@pytest.mark.skipif(shutil.which("getmail") is None, reason="getmail6 not installed")
def test_getmail_leave_on_server_uses_uidl(server, tmp_path):
    deliver(server, FIRST, DOTTED)
    _, got = run_getmail(server, tmp_path, ssl=False, delete=False)
    assert len(got) == 2
    # A restart in between: the UIDLs must not change, or getmail would fetch both again.
    # getmail names its list of seen UIDLs after the port, which port 0 changes: carry it over.
    old = tmp_path / f"oldmail-127.0.0.1-{server.pop3[1]}-alice"
    assert old.exists(), list(tmp_path.iterdir())
    server.stop()
    server.start()
    old.rename(tmp_path / f"oldmail-127.0.0.1-{server.pop3[1]}-alice")
    deliver(server, b"Subject: third\r\n\r\nthird\r\n")
    log, got = run_getmail(server, tmp_path, ssl=False, delete=False)
    assert "1 messages" in log or "1 message" in log, log
    assert len(got) == 3
    assert inbox_count(server) == 3
