"""An account never reaches another account's mail, whatever name it uses (issue 9,
"Isolation"): mailbox names with `..`, `/`, `%`, `*`, `~`, NUL, modified UTF-7 and UTF-8
look-alikes, INBOX in any case, as SELECT/EXAMINE/STATUS/APPEND/COPY/MOVE/RENAME/DELETE/LIST
targets; login names with trailing spaces, NUL, `@` forms and other cases; POP3 logins and LMTP
recipients the same way. Bob's mail is checked unchanged at the end, and nothing is written
outside the data directory."""

import imaplib
import os
import poplib
import re
import smtplib
import socket

import pytest

from conftest import PASSWORD, Server

SECRET = b"bob-secret-7f3a"
BOB_PASSWORD = "bob-own-password-91"

NAMES = [
    "../bob/INBOX", "../bob", "..", "../..", "/bob/INBOX", "/INBOX", "bob/INBOX", "bob",
    "~bob/INBOX", "~bob", "~/../bob", "#shared/bob", "Other Users/bob/INBOX",
    "INBOX/../../bob/INBOX", "./INBOX", "INBOX/.", "INBOX/..", "%", "*", "bob/%", "bob/*",
    "INBOX\x00bob", "&AC4ALgAv-bob/INBOX",  # "../" in modified UTF-7
    "&AC4ALg-/bob", "..\uff0fbob\uff0fINBOX",  # fullwidth solidus
    "\u2025/bob", "bob\u2215INBOX",  # two-dot leader, division slash
    "iNbOx", "INBOX ", " INBOX", "Private", "bob/Private", "../bob/Private",
]


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Answer(bytes):
    """The tagged line; `.lines` has every line of the answer (literals included)."""


def raw(conn, line):
    """Send one command line as bytes (NUL and all); the tagged answer, with all lines."""
    tag = conn._new_tag()
    conn.send(tag + b" " + line + b"\r\n")
    lines = []
    while True:
        resp = conn._get_line()
        lines.append(resp)
        if resp.startswith(tag + b" "):
            answer = Answer(resp)
            answer.lines = lines
            return answer


@pytest.fixture()
def servers():
    s = Server(extra_config='[pop3]\nlisten = ["127.0.0.1:0"]\n[pop3s]\nlisten = []\n'
                            '[lmtp]\nlisten = ["127.0.0.1:0"]\n'
                            '[auth]\nfailure_delay_ms = 0\n', wait_for=("pop3",))
    s.cli("domain", "add", "example.org")
    # Bob's password is his own: a login that works with it is bob's account.
    r = s.cli("user", "passwd", "bob", input=BOB_PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    bob = imaplib.IMAP4(*s.imap)
    bob.login("bob", BOB_PASSWORD)
    bob.create("Private")
    for box in ("INBOX", "Private"):
        bob.append(box, None, None, b"Subject: secret\r\n\r\n" + SECRET + b"\r\n")
    bob.logout()
    yield s
    s.cleanup()


def bob_state(server):
    bob = imaplib.IMAP4(*server.imap)
    bob.login("bob", BOB_PASSWORD)
    state = {}
    for box in ("INBOX", "Private"):
        typ, data = bob.select(box, readonly=True)
        assert typ == "OK"
        typ, msgs = bob.fetch("1:*", "(FLAGS BODY.PEEK[])")
        state[box] = (data[0], [m for m in msgs if isinstance(m, tuple)])
    bob.logout()
    return state


def test_mailbox_names_never_reach_another_account(servers):
    server = servers
    before = bob_state(server)
    alice = imaplib.IMAP4(*server.imap)
    alice.login("alice", PASSWORD)
    alice.append("INBOX", None, None, b"Subject: alice\r\n\r\nalice's own\r\n")
    seen = []
    for name in NAMES:
        q = quoted(name).encode("utf-8")
        for cmd in (b"SELECT", b"EXAMINE"):
            answer = raw(alice, cmd + b" " + q)
            seen.append((name, answer.lines))
            if answer.split()[1] == b"OK":
                # Only alice's own mailboxes may open: her INBOX in any case.
                seen.append((name, raw(alice, b"FETCH 1:* (BODY.PEEK[])").lines))
        seen.append((name, raw(alice, b"STATUS " + q + b" (MESSAGES UIDNEXT)").lines))
        seen.append((name, raw(alice, b"APPEND " + q + b" {7+}\r\nx: y\r\n\r\n")))
        seen.append((name, raw(alice, b'LIST "" ' + q).lines))
        seen.append((name, raw(alice, b"LIST " + q + b' "*"').lines))
        seen.append((name, raw(alice, b"DELETE " + q)))
        seen.append((name, raw(alice, b"RENAME " + q + b" stolen")))
        seen.append((name, raw(alice, b"SUBSCRIBE " + q)))
    # COPY/MOVE from alice's INBOX into every name, then LIST everything alice has.
    raw(alice, b"UNSELECT")
    alice.select("INBOX")
    for name in NAMES:
        q = quoted(name).encode("utf-8")
        seen.append((name, raw(alice, b"COPY 1 " + q)))
        seen.append((name, raw(alice, b"MOVE 1 " + q)))
        alice.append("INBOX", None, None, b"Subject: alice\r\n\r\nalice's own\r\n")
    typ, boxes = alice.list('""', "*")
    for box in boxes:
        m = re.match(rb'\(.*?\) (?:"."|NIL) (.*)$', box)
        name = m.group(1).strip(b'"').decode()
        if raw(alice, b"SELECT " + quoted(name).encode()).split()[1] == b"OK":
            seen.append((name, raw(alice, b"FETCH 1:* (BODY.PEEK[])").lines))
    alice.logout()
    text = repr(seen).encode()
    assert SECRET not in text, [s for s in seen if SECRET in repr(s).encode()][:3]
    # bob's mail is exactly as it was (nothing appended, moved, renamed or deleted).
    assert bob_state(server) == before
    # Every file the server wrote is under its data directory.
    outside = [p for p in server.dir.iterdir() if p.name not in ("data", "mailkeep.toml", "server.log")]
    assert outside == [], outside


@pytest.mark.parametrize("name", [
    "bob ", " bob", "bob\x00", "BOB", "Bob", "bob@", "bob@example.org ", "alice@bob",
    "bob\t", "b\u200bob", "\u0432ob", "bob\r",
])
def test_login_name_variants_are_not_bob(servers, name):
    server = servers
    for password in (BOB_PASSWORD, PASSWORD, "wrong"):
        s = socket.create_connection(server.imap, timeout=10)
        f = s.makefile("rb")
        f.readline()
        lit = name.encode("utf-8")
        s.sendall(b"a LOGIN {%d+}\r\n" % len(lit) + lit + b" " + password.encode() + b"\r\n")
        line = f.readline()
        while not line.startswith(b"a "):
            line = f.readline()
        # A name that is not exactly bob's may log in only as the account it names, with that
        # account's own password (alice@... is alice, with alice's password): never as bob
        # through a look-alike, and never bob's password into another account.
        if line.startswith(b"a OK"):
            if password == BOB_PASSWORD:
                assert name.split("@")[0] == "bob", (name, line)
            else:
                assert name.split("@")[0] == "alice", (name, line)
        s.close()


def test_pop3_and_lmtp_names_never_reach_another_account(servers):
    server = servers
    before = bob_state(server)
    for user in ("../bob", "bob/../alice", "alice/../bob", "~bob", "bob\x00", "alice\x00bob",
                 "*", "%", "alice bob"):
        p = poplib.POP3(*server.pop3, timeout=10)
        try:
            p.user(user)
            p.pass_(PASSWORD)  # alice's
            # Logged in: it must be the one account the name is, with its own mail.
            count, _ = p.stat()
            for i in range(1, count + 1):
                assert SECRET not in b"\n".join(p.retr(i)[1])
        except poplib.error_proto:
            pass
        finally:
            try:
                p.quit()
            except Exception:
                pass
    # LMTP: recipients with path tricks are refused or delivered to the named account only.
    lmtp = smtplib.LMTP(*server.lmtp)
    lmtp.ehlo_or_helo_if_needed()
    for rcpt in ("../bob@example.org", "alice/../bob@example.org", "bob/../../x@example.org",
                 "bob+../../alice@example.org", "bob+..@example.org", "bob+/etc@example.org",
                 "bob+%@example.org", "bob+INBOX\x00@example.org"):
        try:
            lmtp.sendmail("x@example.net", [rcpt], b"Subject: probe\r\n\r\nprobe\r\n")
        except smtplib.SMTPException:
            pass
    lmtp.quit()
    after = bob_state(server)
    # Bob may have received probes (bob+detail is bob's), but his existing mail is unchanged.
    for box in ("INBOX", "Private"):
        assert after[box][1][:1] == before[box][1][:1]
    outside = [p for p in server.dir.iterdir() if p.name not in ("data", "mailkeep.toml", "server.log")]
    assert outside == [], outside
    assert not any(name.startswith("..") for name in os.listdir(server.data))


def test_urlauth_urls_never_reach_another_account(servers):
    """URLFETCH and CATENATE with URLs of bob's mail (URLAUTH, RFC 4467): alice gets nothing
    without a token bob made for her (any access identifier, mechanism, token, a token of her
    own mailbox, one bob made for someone else, an expired one); the control, bob's URL for
    user+alice, works."""
    server = servers
    before = bob_state(server)
    bob = imaplib.IMAP4(*server.imap)
    bob.login("bob", BOB_PASSWORD)
    host = "imap://bob@localhost"
    made = raw(bob, (
        f'GENURLAUTH "{host}/INBOX/;UID=1;URLAUTH=user+carol" INTERNAL'
        f' "{host}/Private/;UID=1;URLAUTH=submit+carol" INTERNAL'
        f' "{host}/INBOX/;UID=1;EXPIRE=2001-01-01T00:00:00Z;URLAUTH=user+alice" INTERNAL'
        f' "{host}/Private/;UID=1;URLAUTH=user+alice" INTERNAL').encode())
    assert b" OK " in made, made.lines
    urls = re.findall(rb'"([^"]+)"', made.lines[0])
    assert len(urls) == 4, made.lines
    for_carol, for_carol_submit, expired, control = (u.decode() for u in urls)
    bob.logout()

    alice = imaplib.IMAP4(*server.imap)
    alice.login("alice", PASSWORD)
    alice.append("INBOX", None, None, b"Subject: alice\r\n\r\nalice's own\r\n")
    own = raw(alice, b'GENURLAUTH "imap://alice@localhost/INBOX/;UID=1;URLAUTH=anonymous" INTERNAL')
    own_token = re.search(rb":internal:([0-9a-f]{64})", own.lines[0]).group(1).decode()
    bob_token = for_carol.rsplit(":", 1)[1]
    candidates = [for_carol, for_carol_submit, expired]
    for box in ("INBOX", "Private", "inbox", "../bob/INBOX"):
        for access in ("anonymous", "authuser", "user+alice", "submit+alice", "user+bob",
                       "submit+bob", "user+carol"):
            rump = f"{host}/{box}/;UID=1;URLAUTH={access}"
            candidates.append(rump)
            for token in ("0" * 64, own_token, bob_token, "f" * 32):
                for mech in ("internal", "INTERNAL", "xinternal"):
                    candidates.append(f"{rump}:{mech}:{token}")
    candidates.append(expired.replace("2001-01-01", "2099-01-01"))
    candidates.append(control.replace("Private", "INBOX"))
    seen = []
    for url in candidates:
        q = quoted(url).encode()
        seen.append((url, raw(alice, b"URLFETCH " + q).lines))
        seen.append((url, raw(alice, b"URLFETCH (" + q + b" BODYPARTSTRUCTURE BINARY)").lines))
        seen.append((url, raw(alice, b"URLFETCH (" + q + b" BODY)").lines))
        seen.append((url, raw(alice, b"APPEND Drafts CATENATE (URL " + q + b")").lines))
    alice.select("Drafts")
    seen.append(("Drafts", raw(alice, b"FETCH 1:* (BODY.PEEK[])").lines))
    text = repr(seen).encode()
    assert SECRET not in text, [s for s in seen if SECRET in repr(s).encode()][:3]
    # The control: bob's URL for user+alice gives alice bob's message.
    assert SECRET in b"".join(raw(alice, b"URLFETCH " + quoted(control).encode()).lines)
    alice.logout()
    assert bob_state(server) == before
