"""Python imaplib with CONTEXT=SEARCH / CONTEXT=SORT (RFC 5267) and MULTISEARCH (RFC 7377)
against the real server. Two sessions: the first holds `RETURN (UPDATE)` contexts, the other
APPENDs, STOREs and EXPUNGEs; the first sees ADDTO / REMOVEFROM after NOOP and during IDLE."""

import imaplib
import re

imaplib.Commands.setdefault("CANCELUPDATE", ("SELECTED",))
imaplib.Commands.setdefault("ESEARCH", ("AUTH", "SELECTED"))


def login(server):
    c = imaplib.IMAP4(*server.imap)
    typ, _ = c.login("alice", "pass")
    assert typ == "OK"
    return c


def updates(c, tag):
    """The ESEARCH responses for `tag` received so far (and forget them)."""
    lines = c.untagged_responses.pop("ESEARCH", [])
    mine = f'(TAG "{tag}"'.encode()
    rest = [ln for ln in lines if mine not in ln]
    if rest:
        c.untagged_responses["ESEARCH"] = rest
    return [ln.decode() for ln in lines if mine in ln]


def run(c, *args):
    """Send a command; returns its tag once it completed OK."""
    tag = c._command(*args)
    typ, data = c._command_complete(args[0], tag)
    assert typ == "OK", data
    return tag.decode()


def test_updates_across_sessions(server):
    a = login(server)
    caps = a.capability()[1][0].decode().split()
    for cap in ("CONTEXT=SEARCH", "CONTEXT=SORT", "MULTISEARCH", "ESEARCH", "ESORT"):
        assert cap in caps, caps
    for n in range(1, 4):
        assert a.append("INBOX", None, None, f"Subject: m{n}\r\n\r\n{'x' * n}\r\n".encode())[0] == "OK"
    assert a.select("INBOX")[0] == "OK"
    b = login(server)
    assert b.select("INBOX")[0] == "OK"

    # A UID SEARCH context over the unseen mail, and a SORT context (largest first).
    s = run(a, "UID", "SEARCH", "RETURN", "(UPDATE)", "UNSEEN")
    assert updates(a, s) == [f'(TAG "{s}") UID ALL 1:3']
    t = run(a, "UID", "SORT", "RETURN", "(UPDATE ALL)", "(REVERSE SIZE)", "UTF-8", "ALL")
    assert updates(a, t) == [f'(TAG "{t}") UID ALL 3,2,1']

    # Another session appends a bigger message: ADDTO at the end / at the top after NOOP.
    assert b.append("INBOX", None, None, b"Subject: m4\r\n\r\nxxxxxxxxxx\r\n")[0] == "OK"
    assert a.noop()[0] == "OK"
    assert updates(a, s) == [f'(TAG "{s}") UID ADDTO (0 4)']
    assert updates(a, t) == [f'(TAG "{t}") UID ADDTO (1 4)']

    # Another session marks two messages seen: they leave the UNSEEN context.
    assert b.uid("STORE", "1:2", "+FLAGS.SILENT", r"(\Seen)")[0] == "OK"
    assert a.noop()[0] == "OK"
    assert updates(a, s) == [f'(TAG "{s}") UID REMOVEFROM (0 1:2)']
    assert updates(a, t) == []

    # Another session expunges message 3: REMOVEFROM at its sort position (2), then EXPUNGE.
    assert b.uid("STORE", "3", "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
    assert b.expunge()[0] == "OK"
    assert a.noop()[0] == "OK"
    assert updates(a, s) == [f'(TAG "{s}") UID REMOVEFROM (0 3)']
    assert updates(a, t) == [f'(TAG "{t}") UID REMOVEFROM (2 3)']
    assert a.untagged_responses.pop("EXPUNGE", None) == [b"3"]

    # No more updates for the SORT context.
    run(a, "CANCELUPDATE", f'"{t}"')

    # During IDLE: the delivery wakes the session, which sends EXISTS and the ADDTO.
    tag = a._new_tag()
    a.send(tag + b" IDLE\r\n")
    assert a.readline().startswith(b"+")
    assert b.append("INBOX", None, None, b"Subject: m5\r\n\r\nhi\r\n")[0] == "OK"
    seen = []
    while not any(b"ESEARCH" in ln for ln in seen):
        seen.append(a.readline())
    a.send(b"DONE\r\n")
    while not (line := a.readline()).startswith(tag):
        seen.append(line)
    assert line.startswith(tag + b" OK"), line
    text = b"".join(seen).decode()
    assert "* 4 EXISTS" in text, text
    assert f'* ESEARCH (TAG "{s}") UID ADDTO (0 5)' in text, text
    assert f'TAG "{t}"' not in text, text

    b.logout()
    a.logout()


def test_multisearch(server):
    c = login(server)
    for box in ("Work", "Work/2024", "Work/2024/Q1", "Play"):
        assert c.create(box)[0] == "OK"
    for box, subject in (("Work", "budget"), ("Work/2024", "budget"), ("Work/2024/Q1", "budget"),
                         ("Play", "budget"), ("Play", "games"), ("INBOX", "hello")):
        assert c.append(box, None, None, f"Subject: {subject}\r\n\r\nx\r\n".encode())[0] == "OK"

    # Authenticated state: one ESEARCH response per mailbox with matches, UIDs, correlators.
    tag = run(c, "ESEARCH", "IN (subtree-one Work mailboxes Play)", "SUBJECT budget")
    got = updates(c, tag)
    boxes = [re.search(r'MAILBOX "([^"]+)"', ln).group(1) for ln in got]
    assert boxes == ["Work", "Work/2024", "Play"], got
    assert all(re.search(r"UIDVALIDITY \d+\) UID ALL 1$", ln) for ln in got), got

    tag = run(c, "ESEARCH", "IN (personal)", "RETURN (COUNT)", "SUBJECT budget")
    got = updates(c, tag)
    assert len(got) == 4 and all(ln.endswith("UID COUNT 1") for ln in got), got

    # Without IN, the selected mailbox is searched: BAD in the authenticated state.
    try:
        c._simple_command("ESEARCH", "ALL")
        raise AssertionError("ESEARCH without a selected mailbox was accepted")
    except imaplib.IMAP4.error as e:
        assert "No mailbox selected" in str(e)
    assert c.select("Play")[0] == "OK"
    tag = run(c, "ESEARCH", "RETURN (MIN MAX)", "ALL")
    assert updates(c, tag) == [f'(TAG "{tag}" MAILBOX "Play" UIDVALIDITY '
                               + updates_uidvalidity(c, "Play") + ") UID MIN 1 MAX 2"]
    c.logout()


def updates_uidvalidity(c, box):
    typ, data = c.status(box, "(UIDVALIDITY)")
    assert typ == "OK"
    return re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1).decode()
