"""The store features added after the PostgreSQL backend, over IMAP on a PostgreSQL node:
OBJECTID (EMAILID, THREADID from In-Reply-To), SAVEDATE, PREVIEW kept at delivery, REPLACE
(the old message expunged, the new one appended), SORT and THREAD (their keys saved per body
and read back on the next SORT), and a second node seeing the same IDs."""

import imaplib
from datetime import datetime
import re
import time

from conftest import PASSWORD

ROOT = (b"Message-ID: <root@pg>\r\nSubject: root\r\nFrom: a@example.org\r\n\r\n"
        b"Root   text\r\n> quoted\r\n")
REPLY = (b"Message-ID: <reply@pg>\r\nIn-Reply-To: <root@pg>\r\nSubject: Re: root\r\n"
         b"From: b@example.org\r\n\r\nthe reply\r\n")
ALONE = b"Message-ID: <alone@pg>\r\nSubject: alone\r\nFrom: c@example.org\r\n\r\nalone\r\n"

imaplib.Commands.setdefault("REPLACE", ("SELECTED",))


def login(node):
    c = imaplib.IMAP4(*node.imap)
    c.login("alice", PASSWORD)
    return c


def fetch_items(c, items):
    typ, data = c.uid("FETCH", "1:*", f"({items})")
    assert typ == "OK", data
    return [d if isinstance(d, bytes) else d[0] + d[1] for d in data if d != b")"]


def test_objectid_savedate_preview_replace_sort_on_postgres(pg, make_node):
    url = pg.create_database()
    a = make_node(url, users=("alice",))
    b = make_node(url)
    c = login(a)
    before = int(time.time())
    for m in (ROOT, REPLY, ALONE):
        assert c.append("INBOX", None, None, m)[0] == "OK"
    c.select("INBOX")
    lines = fetch_items(c, "EMAILID THREADID SAVEDATE")
    ids = [re.search(rb"EMAILID \((\w+)\) THREADID \((\w+)\)", l).groups() for l in lines]
    assert len({e for e, _ in ids}) == 3, lines
    assert ids[0][1] == ids[1][1], f"the reply shares its parent's THREADID: {lines}"
    assert ids[2][1] != ids[0][1], lines
    for l in lines:
        assert b"SAVEDATE \"" in l, l
    typ, data = c.uid("FETCH", "1", "(PREVIEW)")
    assert typ == "OK" and b'PREVIEW "Root text"' in data[0], data

    # The same IDs through the other node.
    c2 = login(b)
    c2.select("INBOX")
    assert [re.search(rb"EMAILID \((\w+)\) THREADID \((\w+)\)", l).groups()
            for l in fetch_items(c2, "EMAILID THREADID")] == ids
    c2.logout()

    # SORT twice (the second reads the keys the first saved), THREAD by references.
    for _ in range(2):
        typ, data = c.uid("SORT", "(SUBJECT)", "UTF-8", "ALL")
        assert typ == "OK" and data[0].split() == [b"3", b"1", b"2"], data
    assert pg.sql(url, "SELECT count(*) FROM sort_keys").strip() == "3", "keys kept per body"
    typ, data = c.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"(1 2)(3)", data

    # REPLACE message 3 by a new one: expunged, the new one appended with a new UID.
    c.literal = b"Subject: replaced\r\n\r\nnew text\r\n"
    typ, data = c.uid("REPLACE", "3", "INBOX")
    assert typ == "OK", data
    typ, data = c.uid("SEARCH", "ALL")
    assert data[0].split() == [b"1", b"2", b"4"], data
    typ, data = c.uid("FETCH", "4", "(PREVIEW SAVEDATE)")
    assert b'PREVIEW "new text"' in data[0], data
    saved = re.search(rb'SAVEDATE "([^"]+)"', data[0]).group(1).decode()
    stamp = datetime.strptime(saved.strip(), "%d-%b-%Y %H:%M:%S %z").timestamp()
    assert before <= stamp <= time.time() + 1, f"SAVEDATE {saved} is the time of the REPLACE"
    c.logout()


def test_import_keeps_uids_on_postgres(pg, make_node, tmp_path):
    """`mailkeep import maildir` into a PostgreSQL store keeps the folder's UIDVALIDITY and
    UIDs (dovecot-uidlist); a session on another node sees the mail without logging in again."""
    url = pg.create_database()
    a = make_node(url, users=("alice",))
    b = make_node(url)
    md = tmp_path / "md"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    lines = []
    for i in range(5):
        data = (f"From: s{i}@example.org\nSubject: imported {i}\nMessage-ID: <imp{i}@pg>\n\n"
                f"imported body {i}\n").encode()
        base = f"{1700000000 + i}.M{i}P1.host,S={len(data)}"
        (md / "cur" / f"{base}:2,S").write_bytes(data)
        lines.append(f"{10 + 2 * i} :{base}\n")
    (md / "dovecot-uidlist").write_text("3 V4242 N20 G0123456789abcdef0123456789abcdef\n"
                                        + "".join(lines))
    watcher = login(b)
    watcher.select("INBOX")
    r = a.cli("import", "maildir", str(md), "--user", "alice")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        watcher.noop()
        if watcher.untagged_responses.get("EXISTS", [b"0"])[-1] == b"5":
            break
        time.sleep(0.1)
    typ, data = watcher.uid("SEARCH", "ALL")
    assert data[0].split() == [b"10", b"12", b"14", b"16", b"18"], data
    typ, data = watcher.status("INBOX", "(UIDVALIDITY UIDNEXT)")
    assert b"UIDVALIDITY 4242" in data[0] and b"UIDNEXT 19" in data[0], data
    watcher.logout()
