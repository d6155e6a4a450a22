"""`mailkeep migrate` from a second Mailkeep: over TLS (certificate checked unless --insecure)
and STARTTLS, flags, keywords, INTERNALDATE, a big message spooled rather than held."""

import imaplib

from conftest import PASSWORD, message, migrate
from test_dovecot import flags_for, snapshot

BIG = int(__import__("os").environ.get("BIG_MIB", "12")) * 1024 * 1024
FOLDERS = ["INBOX", "Sent", "Lists/rust", "Lists/rust/announce", "Entw&APw-rfe"]


def big_message():
    """A message with a BIG-byte attachment (base64), as big mail usually is."""
    import base64
    import random
    raw = random.Random(7).randbytes(BIG * 3 // 4)
    b64 = base64.encodebytes(raw).replace(b"\n", b"\r\n")
    return (b"From: big@example.org\r\nSubject: big\r\nMessage-ID: <big@test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--b--\r\n")


def fill(source):
    c = imaplib.IMAP4(*source.imap)
    c.login("alice", PASSWORD)
    for f in FOLDERS[2:]:
        c.create(f'"{f}"')
    n = 0
    for f in FOLDERS:
        for _ in range(12):
            flags = " ".join(flags_for(n))
            c.append(f'"{f}"', f"({flags})", f'"0{n % 9 + 1}-Mar-2023 1{n % 10}:00:00 -0{n % 5}30"',
                     message(n, f))
            n += 1
    c.append("INBOX", "(\\Seen)", '"01-Jan-2020 00:00:00 +0000"', big_message())
    c.logout()


def test_from_mailkeep_over_tls_and_starttls(make_server):
    source = make_server(users=("alice",))
    target = make_server(users=("alice",))
    fill(source)
    host, port = source.imaps

    # The self-signed certificate is refused unless --insecure.
    r = migrate(target, "--from", f"imaps://alice@{host}:{port}", "--user", "alice")
    assert r.returncode != 0 and "certificate" in (r.stdout + r.stderr).lower(), r

    r = migrate(target, "--from", f"imaps://alice@{host}:{port}", "--user", "alice", "--insecure")
    assert r.returncode == 0, r
    assert "first run: 61 messages new" in r.stdout, r
    print(f"61 messages with one of {BIG >> 20} MiB: {r.seconds:.1f} s, "
          f"peak RSS {r.maxrss_kib} KiB")
    # The big message is spooled to a file as it arrives and handed to the store as a file:
    # the client holds none of it; the store's own APPEND path (reading it, analysing it)
    # needs about twice its size, as a server APPEND of it does. A process of ~26 MiB
    # otherwise (measured: 68 MiB peak with a 24 MiB message, 26 MiB with 1 MiB).
    assert r.maxrss_kib < (BIG >> 10) * 2 + 32 * 1024, r.maxrss_kib
    assert not list((target.data / "spool").glob("migrate-*")), "spool files removed"

    before = snapshot(*source.imap, "alice", FOLDERS)
    after = snapshot(*target.imap, "alice", FOLDERS)
    for f in FOLDERS:
        assert after[f] == before[f], f

    # STARTTLS on the plain port; nothing new.
    host, port = source.imap
    c = imaplib.IMAP4(host, port)
    c.login("alice", PASSWORD)
    c.select("Lists/rust")
    c.uid("STORE", "1", "+FLAGS", "(\\Answered $Done)")
    c.logout()
    # (The target server keeps running: the store is shared with the running server.)
    t = imaplib.IMAP4(*target.imap)
    t.login("alice", PASSWORD)
    t.select("Lists/rust")
    r = migrate(target, "--from", f"imap://{host}:{port}", "--user", "alice", "--insecure",
                stop=False)
    typ, data = t.uid("FETCH", "1", "(FLAGS)")
    t.noop()
    typ, data = t.uid("FETCH", "1", "(FLAGS)")
    assert b"$Done" in data[-1] and b"\\Answered" in data[-1], data
    t.logout()
    assert r.returncode == 0, r
    assert "0 new messages, 1 flag changes applied, 0 messages gone" in r.stdout, r
    assert snapshot(*target.imap, "alice", ["Lists/rust"]) == \
        snapshot(*source.imap, "alice", ["Lists/rust"])


def test_wrong_password_and_unreachable_source(make_server):
    source = make_server(users=("alice",))
    target = make_server(users=("alice",))
    host, port = source.imap
    r = migrate(target, "--from", f"imap://{host}:{port}", "--user", "alice", "--insecure",
                password="wrong")
    assert r.returncode != 0 and "login refused" in r.stdout, r
    source.stop()
    r = migrate(target, "--from", f"imap://{host}:{port}", "--user", "alice", "--insecure")
    assert r.returncode != 0 and "connecting to" in r.stdout, r
