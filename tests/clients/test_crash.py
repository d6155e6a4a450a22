"""Durability: kill -9 while clients APPEND; every message that got OK must be there, intact,
and `mailkeep check` must pass after restart."""

import imaplib
import threading
import time

from mkserver import Server


def test_kill9_during_appends():
    s = Server(users=("alice",))
    try:
        acked = {}
        stop = threading.Event()

        def writer(n):
            c = imaplib.IMAP4(*s.imap)
            c.login("alice", "pass")
            i = 0
            while not stop.is_set():
                body = (f"From: w{n}@example.org\r\nSubject: w{n}-{i}\r\nMessage-ID: <w{n}-{i}@x>\r\n\r\n"
                        + f"payload {n} {i} " * 200 + "\r\n").encode()
                try:
                    typ, data = c.append("INBOX", None, None, body)
                except Exception:
                    return
                if typ == "OK":
                    acked[f"w{n}-{i}"] = body
                i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        s.kill9()
        stop.set()
        for t in threads:
            t.join(10)
        assert len(acked) > 10, "too few appends before the crash to mean anything"
        s.start()
        c = imaplib.IMAP4(*s.imap)
        c.login("alice", "pass")
        c.select("INBOX", readonly=True)
        typ, data = c.fetch("1:*", "(BODY.PEEK[])")
        found = {}
        for item in data:
            if isinstance(item, tuple):
                body = item[1]
                subj = [l for l in body.split(b"\r\n") if l.startswith(b"Subject: ")][0][9:].decode()
                found[subj] = body
        missing = [k for k in acked if k not in found]
        assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:5]}"
        corrupt = [k for k in acked if found[k] != acked[k]]
        assert not corrupt, f"messages changed: {corrupt[:5]}"
        c.logout()
        s.stop()
        r = s.cli("check")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        s.cleanup()
