"""A real Postfix relays to Mailkeep over LMTP (TCP and Unix socket).

Postfix runs as a private instance: its own configuration and queue in a temporary directory
(`postconf -c DIR`, `postfix -c DIR start`), SMTP on a free loopback port, every local domain
relayed to Mailkeep: `example.org` by `virtual_transport = lmtp:inet:…`, `sock.example` by
`transport_maps` to `lmtp:unix:…`. Python's smtplib sends to it. The master process needs root:
as another user the test runs Postfix's commands with `sudo -n`.

Skipped (with the reason) only off CI, when Postfix is not installed or neither root nor
passwordless sudo is available: on CI (CI=true) it must run (scripts/test.sh installs the
Debian `postfix` package).
"""

import grp
import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, lmtp_server
from helpers import distinct_bodies, messages

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
ON_CI = os.environ.get("CI") == "true"

if not os.path.exists(POSTFIX) and not ON_CI:
    pytest.skip("Postfix is not installed (Debian: apt-get install postfix); "
                "this test runs on CI", allow_module_level=True)

SUDO = [] if os.geteuid() == 0 else ["sudo", "-n"]

if SUDO and not ON_CI and subprocess.run([*SUDO, "true"], capture_output=True).returncode != 0:
    pytest.skip("Postfix's master process needs root: run as root or with passwordless sudo "
                "(this test runs on CI)", allow_module_level=True)


def root(*cmd, check=True):
    # Postfix prints its errors only to a terminal (else to its log): `script` gives it one.
    line = " ".join(cmd)
    r = subprocess.run([*SUDO, "script", "-qec", line, "/dev/null"], capture_output=True,
                       text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    def __init__(self, lmtp_tcp, lmtp_unix):
        self.dir = Path(tempfile.mkdtemp(prefix="mailkeep-postfix-"))
        os.chmod(self.dir, 0o755)
        self.etc = self.dir / "etc"
        self.etc.mkdir()
        self.port = free_port()
        host, port = lmtp_tcp
        (self.etc / "master.cf").write_text(MASTER_CF.replace(
            "smtp      inet", f"127.0.0.1:{self.port} inet", 1))
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.dir / "queue",
            "data_directory": self.dir / "data",
            "maillog_file": self.dir / "maillog",
            "maillog_file_prefixes": self.dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "myhostname": "mx.test.invalid",
            "mydomain": "test.invalid",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "",
            "alias_maps": "",
            "alias_database": "",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            # Unknown recipients are Mailkeep's to refuse: over LMTP, so Postfix bounces.
            "smtpd_reject_unlisted_recipient": "no",
            "virtual_mailbox_domains": "example.org, sock.example",
            "virtual_transport": f"lmtp:inet:{host}:{port}",
            "transport_maps": "inline:{ sock.example=lmtp:unix:" + lmtp_unix + " }",
            "lmtp_destination_recipient_limit": "50",
            "delay_warning_time": "0",
            "bounce_queue_lifetime": "0",
            "maximal_queue_lifetime": "1h",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtputf8_enable": "no",
            "biff": "no",
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
        }
        (self.etc / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.dir / "queue").mkdir()
        (self.dir / "data").mkdir()
        root("chown", "-R", "root:root", str(self.dir))
        root("chown", "postfix", str(self.dir / "data"))
        root(POSTFIX, "-c", str(self.etc), "start")
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("Postfix did not listen:\n" + self.log())

    def log(self):
        r = root("cat", str(self.dir / "maillog"), check=False)
        return r.stdout

    def stop(self):
        root(POSTFIX, "-c", str(self.etc), "stop", check=False)
        # postfix stop returns before the master is gone; its pid file says who it was.
        pid_file = self.dir / "queue" / "pid" / "master.pid"
        deadline = time.time() + 10
        while time.time() < deadline:
            r = root("cat", str(pid_file), check=False)
            pid = r.stdout.strip()
            if r.returncode != 0 or not pid or not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        root("rm", "-rf", str(self.dir), check=False)


@pytest.fixture
def relay(request):
    # POP3 too: the end-to-end test reads what Postfix delivered with a POP3 client.
    # Indirect parameters are more `[lmtp]` settings (`quota_temporary = true`).
    lmtp_settings = getattr(request, "param", "")
    server = lmtp_server(extra_config=lmtp_settings + '[pop3]\nlisten = ["127.0.0.1:0"]\n',
                         wait_for=("pop3",))
    assert server.cli("domain", "add", "sock.example").returncode == 0
    # Postfix's lmtp client runs as `postfix`: it reaches the 0660 socket through its group,
    # as docs/postfix.md sets up: the socket's directory is setgid `postfix`, so the socket
    # made there at the next start belongs to that group.
    server.stop()
    sock_dir = Path(server.lmtp_unix).parent
    root("chgrp", "postfix", str(sock_dir))
    root("chmod", "2751", str(sock_dir))
    server.start()
    assert grp.getgrgid(os.stat(server.lmtp_unix).st_gid).gr_name == "postfix"
    postfix = None
    try:
        postfix = Postfix(server.lmtp, server.lmtp_unix)
        yield server, postfix
    finally:
        if postfix is not None:
            postfix.stop()
        server.cleanup()


def wait_for(check, what, postfix, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n--- maillog ---\n{postfix.log()}")


def test_postfix_relays_over_lmtp(relay):
    server, postfix = relay
    imap_create(server, "alice", "Lists")
    smtp = smtplib.SMTP("127.0.0.1", postfix.port, timeout=10)
    body = "Subject: via postfix\r\nMessage-ID: <pf1@remote.example>\r\n\r\nHello through Postfix.\r\n"
    # Two recipients, one over TCP LMTP and one over the Unix socket, plus a +detail.
    refused = smtp.sendmail("sender@remote.example",
                            ["alice@example.org", "bob@example.org"], body)
    assert refused == {}
    smtp.sendmail("sender@remote.example", ["alice@sock.example"],
                  "Subject: via unix socket\r\n\r\nx\r\n")
    smtp.sendmail("sender@remote.example", ["alice+lists@example.org"],
                  "Subject: to a folder\r\n\r\ny\r\n")
    # An unknown recipient: Postfix accepts, Mailkeep refuses at RCPT, Postfix bounces to the
    # sender, who is a Mailkeep account (bob), so the bounce itself arrives over LMTP.
    smtp.sendmail("bob@example.org", ["nobody@example.org"], "Subject: lost\r\n\r\nz\r\n")
    smtp.quit()

    def inbox(user, mailbox="INBOX"):
        return messages(server, user, mailbox)

    wait_for(lambda: len(inbox("alice")) == 2 and len(inbox("bob")) == 2
             and len(inbox("alice", "Lists")) == 1, "deliveries", postfix)
    alice = inbox("alice")
    assert any(b"Subject: via postfix" in m and b"Hello through Postfix." in m for m in alice)
    assert any(b"Subject: via unix socket" in m for m in alice)
    assert all(m.startswith(b"Return-Path: <") for m in alice)
    assert b"Subject: to a folder" in inbox("alice", "Lists")[0]
    bob = inbox("bob")
    assert any(b"Subject: via postfix" in m for m in bob)
    bounce = [m for m in bob if b"Subject: lost" in m and b"Undelivered" in m]
    assert bounce, bob
    assert b"5.1.1" in bounce[0] and b"nobody@example.org" in bounce[0]
    # The 2-recipient message went over one LMTP transaction: stored once. Bodies in the
    # store: the shared one, the unix-socket one, the folder one and the bounce.
    shared = [m for m in alice if b"Subject: via postfix" in m][0]
    assert shared in bob
    assert distinct_bodies(server) == 4
    log = postfix.log()
    assert "relay=127.0.0.1[127.0.0.1]" in log and "status=sent" in log
    assert "lmtp.sock" in log


def test_postfix_to_an_idle_imap_client_and_a_pop3_download(relay):
    """The whole path: SMTP into Postfix, LMTP into Mailkeep, an IMAP client IDLE-ing on INBOX
    hears of the message at once, and a POP3 client downloads it byte for byte."""
    import imaplib
    import poplib
    import threading

    server, postfix = relay
    imap = imaplib.IMAP4(*server.imap)
    imap.login("alice", "pass")
    imap.select("INBOX")
    tag = imap._new_tag()
    imap.send(tag + b" IDLE\r\n")
    assert imap.readline().startswith(b"+")
    heard = []

    def listen():
        while True:
            line = imap.readline()
            if not line or b"EXISTS" in line:
                heard.append((time.monotonic(), line))
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    body = ("Subject: end to end\r\nMessage-ID: <e2e@remote.example>\r\n\r\n"
            ".a line that starts with a dot\r\nend.\r\n")
    smtp = smtplib.SMTP("127.0.0.1", postfix.port, timeout=10)
    assert smtp.sendmail("sender@remote.example", ["alice@example.org"], body) == {}
    smtp.quit()
    listener.join(30)
    assert heard and b"* 1 EXISTS" in heard[0][1], (heard, postfix.log())
    imap.send(b"DONE\r\n")
    imap.logout()

    pop = poplib.POP3(*server.pop3, timeout=10)
    pop.user("alice")
    pop.pass_("pass")
    assert pop.stat()[0] == 1
    resp, lines, _ = pop.retr(1)
    got = b"\r\n".join(lines) + b"\r\n"
    stored = messages(server, "alice", "INBOX")[0]
    assert got == stored
    assert got.startswith(b"Return-Path: <sender@remote.example>\r\n")
    # Postfix adds its own headers (Received, Date, From) and may reorder them; the body
    # stays as sent, its dot-line included.
    assert got.endswith(b"\r\n\r\n.a line that starts with a dot\r\nend.\r\n")
    assert b"\r\nSubject: end to end\r\n" in got
    pop.quit()


def imap_create(server, user, name):
    import imaplib
    imap = imaplib.IMAP4(*server.imap)
    imap.login(user, "pass")
    assert imap.create(name)[0] == "OK"
    imap.logout()


def fill_quota(server, user):
    """`user` may hold one message, and holds one."""
    assert server.cli("quota", "set", user, "--messages", "1").returncode == 0
    imap = imaplib.IMAP4(*server.imap)
    imap.login(user, PASSWORD)
    assert imap.append("INBOX", None, None, b"Subject: filler\r\n\r\nx\r\n")[0] == "OK"
    imap.logout()


def test_postfix_bounces_an_over_quota_recipient(relay):
    """552 5.2.2 for alice: Postfix bounces to the sender (bob, an account here, so the bounce
    arrives over LMTP); carol, the other recipient of the same message, gets it."""
    server, postfix = relay
    server.add_user("carol")
    fill_quota(server, "alice")
    smtp = smtplib.SMTP("127.0.0.1", postfix.port, timeout=10)
    refused = smtp.sendmail("bob@example.org", ["alice@example.org", "carol@example.org"],
                            "Subject: too much\r\n\r\nfor a full mailbox\r\n")
    assert refused == {}
    smtp.quit()
    bounces = wait_for(lambda: [m for m in messages(server, "bob") if b"Undelivered" in m],
                       "the bounce", postfix)
    assert b"5.2.2" in bounces[0] and b"alice@example.org" in bounces[0], bounces[0]
    assert [b"Subject: too much" in m for m in messages(server, "carol")] == [True]
    assert len(messages(server, "alice")) == 1
    log = postfix.log()
    assert "status=bounced" in log and "5.2.2" in log, log


@pytest.mark.parametrize("relay", ["quota_temporary = true\n"], indirect=True)
def test_postfix_defers_an_over_quota_recipient_when_temporary(relay):
    """452 4.2.2 with quota_temporary: the message stays in Postfix's queue, and is delivered
    once the account has room again."""
    server, postfix = relay
    fill_quota(server, "alice")
    smtp = smtplib.SMTP("127.0.0.1", postfix.port, timeout=10)
    smtp.sendmail("bob@example.org", ["alice@example.org"],
                  "Subject: wait for room\r\n\r\nlater\r\n")
    smtp.quit()

    def queued():
        r = root("postqueue", "-c", str(postfix.etc), "-p", check=False)
        return "alice@example.org" in r.stdout and "4.2.2" in r.stdout and r.stdout

    listing = wait_for(queued, "the deferred message in the queue", postfix)
    assert "Mailbox full" in listing, listing
    assert "status=deferred" in postfix.log()
    assert len(messages(server, "alice")) == 1
    assert not [m for m in messages(server, "bob") if b"Undelivered" in m], "no bounce"
    # Room again: the next retry (queue_run_delay 1s, backoff up to 2s) delivers it.
    assert server.cli("quota", "set", "alice", "--messages", "none").returncode == 0
    root("postqueue", "-c", str(postfix.etc), "-f", check=False)
    wait_for(lambda: any(b"Subject: wait for room" in m for m in messages(server, "alice")),
             "delivery after the retry", postfix)
