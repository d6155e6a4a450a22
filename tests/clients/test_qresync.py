"""QRESYNC (RFC 7162 §3.2) over TCP with two connections: one changes and expunges, the other
resynchronizes and must get exactly the VANISHED (EARLIER) and FETCH it missed. Then the same
with tombstones pruned at once (`[store] tombstone_days = 0`), where the answer is the
RFC-allowed over-report of every UID not present."""

import re
import socket

MSG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
       b"Subject: qresync %d\r\n\r\nbody %d\r\n")


class Raw:
    """A minimal IMAP client that returns every untagged line (no literals are fetched)."""

    def __init__(self, server, user="alice"):
        self.sock = socket.create_connection(server.imap, timeout=10)
        self.f = self.sock.makefile("rb")
        self.n = 0
        assert self.f.readline().startswith(b"* OK")
        self.ok(f"LOGIN {user} pass")

    def cmd(self, text):
        self.n += 1
        tag = f"t{self.n}"
        self.sock.sendall(f"{tag} {text}\r\n".encode())
        lines = []
        while True:
            line = self.f.readline()
            assert line, f"connection closed during {text!r}"
            line = line.decode().rstrip("\r\n")
            if line.startswith(tag + " "):
                return line[len(tag) + 1:], lines
            lines.append(line)

    def ok(self, text):
        status, lines = self.cmd(text)
        assert status.startswith("OK"), f"{text!r}: {status} {lines}"
        return lines

    def append(self, count):
        for i in range(1, count + 1):
            data = MSG % (i, i)
            self.ok(f"APPEND INBOX {{{len(data)}+}}\r\n" + data.decode())

    def close(self):
        self.sock.close()


def code(lines, name):
    for line in lines:
        m = re.search(r"\[" + name + r" (\d+)\]", line)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no {name} in {lines}")


def qresync_lines(lines):
    """The VANISHED and FETCH lines of a SELECT answer, in order."""
    return [line for line in lines if " VANISHED " in line or " FETCH " in line]


def setup(server, count=6):
    """INBOX with `count` messages; returns (writer, uidvalidity, modseq known to the reader)."""
    w = Raw(server)
    w.append(count)
    r = Raw(server, "alice")
    r.ok("ENABLE QRESYNC")
    lines = r.ok("SELECT INBOX")
    r.close()
    return w, code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")


def change(w):
    """The other client: flag UID 2, expunge UIDs 3 and 4, flag UID 6."""
    w.ok("SELECT INBOX")
    w.ok("UID STORE 2 +FLAGS.SILENT (\\Answered)")
    w.ok("UID STORE 3:4 +FLAGS.SILENT (\\Deleted)")
    expunged = w.ok("UID EXPUNGE 3:4")
    w.ok("UID STORE 6 +FLAGS.SILENT ($Forwarded)")
    return expunged


def fetch_line(line):
    m = re.match(r"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)$", line)
    assert m, line
    return int(m.group(1)), int(m.group(2)), m.group(3)


def test_select_qresync_reports_exactly_what_changed(server):
    w, uv, modseq = setup(server)
    change(w)
    r = Raw(server)
    # Not enabled yet: BAD, nothing selected.
    status, _ = r.cmd(f"SELECT INBOX (QRESYNC ({uv} {modseq}))")
    assert status.startswith("BAD")
    r.ok("ENABLE QRESYNC")
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq}))")
    got = qresync_lines(lines)
    assert got[0] == "* VANISHED (EARLIER) 3:4", lines
    assert [fetch_line(x)[:2] for x in got[1:]] == [(2, 2), (4, 6)], lines
    assert "\\Answered" in fetch_line(got[1])[2] and "$Forwarded" in fetch_line(got[2])[2]
    # The VANISHED/FETCH answer comes after the usual responses, before the tagged OK.
    assert lines.index(got[0]) > max(i for i, x in enumerate(lines) if "HIGHESTMODSEQ" in x)

    # Reselect: [CLOSED] first; known UIDs narrow both parts (RFC 7162 §3.2.5.1).
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq} 1:2,4:5))")
    assert lines[0].startswith("* OK [CLOSED]"), lines
    got = qresync_lines(lines)
    assert got[0] == "* VANISHED (EARLIER) 4", lines
    assert [fetch_line(x)[:2] for x in got[1:]] == [(2, 2)], lines

    # Sequence match data proving the client knows everything up to UID 2 (seq 2 = UID 2):
    # the exact answer is unchanged (3:4 are above). Proof up to UID 5 (seq 3 = UID 5) leaves
    # nothing to report.
    lines = r.ok(f"EXAMINE INBOX (QRESYNC ({uv} {modseq} 1:6 (1:2 1:2)))")
    assert qresync_lines(lines)[0] == "* VANISHED (EARLIER) 3:4"
    lines = r.ok(f"EXAMINE INBOX (QRESYNC ({uv} {modseq} 1:6 (3 5)))")
    assert not any("VANISHED" in x for x in lines), lines

    # A UIDVALIDITY mismatch is a plain SELECT.
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv + 1} {modseq}))")
    assert qresync_lines(lines) == [], lines

    # Sequence and UID sets of different sizes are BAD (RFC 7162 §3.2.5), and unselect.
    status, _ = r.cmd(f"SELECT INBOX (QRESYNC ({uv} {modseq} 1:6 (1:2 1)))")
    assert status.startswith("BAD")
    status, _ = r.cmd("FETCH 1 FLAGS")
    assert status.startswith("BAD")

    # UID FETCH ... (CHANGEDSINCE n VANISHED) gives the same answer (RFC 7162 §3.2.6).
    r.ok("SELECT INBOX")
    lines = r.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert lines[0] == "* VANISHED (EARLIER) 3:4", lines
    assert [fetch_line(x)[:2] for x in lines[1:]] == [(2, 2), (4, 6)], lines
    status, _ = r.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")
    assert status.startswith("BAD")
    status, _ = r.cmd(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert status.startswith("BAD")
    r.close()
    w.close()


def test_live_expunges_are_vanished_once_enabled(server):
    w, uv, modseq = setup(server)
    w.ok("SELECT INBOX")
    r = Raw(server)
    r.ok("ENABLE QRESYNC")
    r.ok("SELECT INBOX")
    w.ok("UID STORE 1,3,5 +FLAGS.SILENT (\\Deleted)")
    w.ok("EXPUNGE")
    lines = r.ok("NOOP")
    assert "* VANISHED 1,3,5" in lines and not any("EXPUNGE" in x for x in lines), lines
    # The client's own EXPUNGE and MOVE too.
    r.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    lines = r.ok("EXPUNGE")
    assert lines == ["* VANISHED 2"] or "* VANISHED 2" in lines, lines
    lines = r.ok("UID MOVE 4 Trash")
    assert "* VANISHED 4" in lines, lines
    # Without QRESYNC the same change is `* n EXPUNGE`.
    lines = w.ok("NOOP")
    assert "* 1 EXPUNGE" in lines, lines
    r.close()
    w.close()


def test_pruned_tombstones_over_report_every_missing_uid(make_server):
    server = make_server(extra_config="[store]\ntombstone_days = 0\n")
    w = Raw(server)
    w.append(6)
    w.ok("SELECT INBOX")
    # UID 1 goes before the reader's last sync: it knows of it.
    w.ok("UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    w.ok("UID EXPUNGE 1")
    r = Raw(server)
    r.ok("ENABLE QRESYNC")
    lines = r.ok("SELECT INBOX")
    uv, modseq = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
    # A third client stays selected while the tombstones go: it must still learn of them.
    live = Raw(server)
    live.ok("ENABLE QRESYNC")
    live.ok("SELECT INBOX")
    r.close()
    # The expunging session itself learns its expunges although their tombstones are gone.
    assert change(w) == ["* 3 EXPUNGE", "* 2 EXPUNGE"]
    lines = live.ok("NOOP")
    assert "* VANISHED 3:4" in lines, lines

    r = Raw(server)
    r.ok("ENABLE QRESYNC")
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq}))")
    got = qresync_lines(lines)
    # Tombstones are gone: every UID below UIDNEXT not present, UID 1 included.
    assert got[0] == "* VANISHED (EARLIER) 1,3:4", lines
    assert [fetch_line(x)[:2] for x in got[1:]] == [(1, 2), (3, 6)], lines
    # Sequence match data (seq 1 = UID 2) proves UID 1 known: the answer narrows to 3:4.
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq} 1:6 (1 2)))")
    assert qresync_lines(lines)[0] == "* VANISHED (EARLIER) 3:4", lines
    # UID FETCH VANISHED falls back the same way.
    lines = r.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert lines[0] == "* VANISHED (EARLIER) 1,3:4", lines
    # A client already at the current modseq hears nothing.
    top = code(r.ok("SELECT INBOX"), "HIGHESTMODSEQ")
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {top}))")
    assert qresync_lines(lines) == [], lines
    for c in (r, w, live):
        c.close()


def test_rfc7162_3_2_5_2_sequence_match_data(make_server):
    """RFC 7162 §3.2.5.2 examples A04 and B04, scaled down: the server remembers no expunges
    (tombstones pruned at once) and only UIDs divisible by three are left."""
    server = make_server(extra_config="[store]\ntombstone_days = 0\n")
    w = Raw(server)
    w.append(31)
    r = Raw(server)
    r.ok("ENABLE QRESYNC")
    lines = r.ok("SELECT INBOX")
    uv, modseq = code(lines, "UIDVALIDITY"), code(lines, "HIGHESTMODSEQ")
    r.close()
    w.ok("SELECT INBOX")
    gone = ",".join(str(u) for u in range(1, 32) if u % 3)
    w.ok(f"UID STORE {gone} +FLAGS.SILENT (\\Deleted)")
    w.ok("EXPUNGE")
    w.ok("UID STORE 3,27,30 +FLAGS.SILENT (\\Seen)")
    r = Raw(server)
    r.ok("ENABLE QRESYNC")
    # A04: no sequence match data: every missing known UID (1:29 here).
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq} 1:29))")
    got = qresync_lines(lines)
    assert got[0] == "* VANISHED (EARLIER) " + ",".join(
        f"{u}:{u + 1}" for u in range(1, 29, 3)), lines
    # UID 30 is not a known UID: its flag change is not reported either.
    assert [fetch_line(x)[:2] for x in got[1:]] == [(1, 3), (9, 27)], lines
    # B04: the sample pairs all match, so the client knows every expunge up to UID 30.
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq} 1:29 (5,7,9:10 15,21,27,30)))")
    got = qresync_lines(lines)
    assert [fetch_line(x)[:2] for x in got] == [(1, 3), (9, 27)], lines
    # The first pair that does not match ends the proof: seq 7 is UID 21, not 22, so only
    # the expunges up to UID 15 are known.
    lines = r.ok(f"SELECT INBOX (QRESYNC ({uv} {modseq} 1:29 (5,7,9 15,22,27)))")
    got = qresync_lines(lines)
    assert got[0] == "* VANISHED (EARLIER) " + ",".join(
        f"{u}:{u + 1}" for u in range(16, 29, 3)), lines
    r.close()
    w.close()


def test_every_untagged_fetch_carries_the_uid_once_qresync_is_on(server):
    """RFC 7162 §3.2.4: STORE and a FETCH that sets \\Seen answer with UID and MODSEQ."""
    w = Raw(server)
    w.append(3)
    w.close()
    r = Raw(server)
    # IMAP4rev2: no \Recent in the flags.
    r.ok("ENABLE IMAP4rev2 QRESYNC")
    r.ok("SELECT INBOX")
    lines = r.ok("STORE 2 +FLAGS (\\Answered)")
    assert len(lines) == 1 and re.match(
        r"\* 2 FETCH \(UID 2 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$", lines[0]), lines
    lines = r.ok("FETCH 3 (BODY[TEXT])")
    assert re.match(r"\* 3 FETCH \(UID 3 FLAGS \(\\Seen\) MODSEQ \(\d+\) BODY\[TEXT\] \{", lines[0]), lines
    # A FETCH that changes nothing is answered as asked (§3.2.4's exception).
    lines = r.ok("FETCH 1 (FLAGS)")
    assert lines == ["* 1 FETCH (FLAGS ())"], lines
    r.close()


def test_idle_reports_vanished(server):
    """RFC 7162 §3.2.10.2 during IDLE (RFC 2177): another session's expunge arrives as VANISHED."""
    w = Raw(server)
    w.append(3)
    w.ok("SELECT INBOX")
    r = Raw(server)
    r.ok("ENABLE QRESYNC")
    r.ok("SELECT INBOX")
    r.sock.sendall(b"i1 IDLE\r\n")
    assert r.f.readline().startswith(b"+ ")
    w.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
    w.ok("EXPUNGE")
    got = r.f.readline().decode().rstrip("\r\n")
    while " FETCH " in got:
        got = r.f.readline().decode().rstrip("\r\n")
    assert got == "* VANISHED 2", got
    r.sock.sendall(b"DONE\r\n")
    assert r.f.readline().startswith(b"i1 OK")
    r.close()
    w.close()
