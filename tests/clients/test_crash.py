"""Durability: kill -9 while clients APPEND; every message that got OK must be there, intact,
and `mailkeep check` must pass after restart."""

import imaplib
import socket
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


def big_message(n, i):
    """About 400 KiB: over the spool threshold (256 KiB), and random, so it packs to more than
    the index keeps inline: a spooled literal stored as a body file."""
    import base64
    import os
    head = (f"From: w{n}@example.org\r\nSubject: big{n}-{i}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    return head.encode() + base64.encodebytes(os.urandom(300_000)).replace(b"\n", b"\r\n")


def test_kill9_during_large_appends():
    """Three kill -9 while big (spooled, file-stored) messages are appended: every acknowledged
    one is intact after the restart, and the body files of appends that never committed are
    swept, so `mailkeep check` passes."""
    s = Server(users=("alice",))
    try:
        acked = {}
        for round in range(3):
            stop = threading.Event()

            def writer(n):
                # MULTIAPPEND (with LITERAL+) of several big messages: the body files are
                # written one after the other before the one commit, a wide window for the kill.
                try:
                    sock = socket.create_connection(s.imap, timeout=30)
                    f = sock.makefile("rb")
                    f.readline()
                    sock.sendall(b"l LOGIN alice pass\r\n")
                    f.readline()
                    i = 0
                    while not stop.is_set():
                        batch = {f"big{n}-{round}-{i}-{j}": big_message(n, f"{round}-{i}-{j}")
                                 for j in range(4)}
                        cmd = b"a APPEND INBOX"
                        for body in batch.values():
                            cmd += b" {%d+}\r\n" % len(body) + body
                        sock.sendall(cmd + b"\r\n")
                        line = f.readline()
                        while line and not line.startswith(b"a "):
                            line = f.readline()
                        if line.startswith(b"a OK"):
                            acked.update(batch)
                        elif not line:
                            return
                        i += 1
                except OSError:
                    return

            threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
            for t in threads:
                t.start()
            time.sleep(1.5 + 0.4 * round)
            s.kill9()
            stop.set()
            for t in threads:
                t.join(10)
            s.start()
        assert len(acked) > 5, "too few appends before the crashes to mean anything"
        c = imaplib.IMAP4(*s.imap)
        c.login("alice", "pass")
        c.select("INBOX", readonly=True)
        found = {}
        typ, data = c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = {}
        for item in data:
            if isinstance(item, tuple):
                seq = int(item[0].split()[0])
                subjects[item[1].decode().split(":", 1)[1].strip()] = seq
        for k in acked:
            if k in subjects:
                typ, d = c.fetch(str(subjects[k]), "(BODY.PEEK[])")
                found[k] = d[0][1]
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
