"""Python imaplib with PARTIAL (RFC 9394) against the real server: paging the results of a UID
SEARCH from the newest end, and the UID FETCH PARTIAL modifier."""

import imaplib


def test_paged_search_and_fetch(server):
    c = imaplib.IMAP4(*server.imap)
    typ, _ = c.login("alice", "pass")
    assert typ == "OK"
    typ, data = c.capability()
    assert "PARTIAL" in data[0].decode().split()
    for n in range(1, 31):
        flags = r"(\Deleted)" if n % 10 == 0 else None
        typ, _ = c.append("INBOX", flags, None, f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode())
        assert typ == "OK"
    typ, _ = c.select("INBOX")
    assert typ == "OK"

    # Pages of 10 from the newest: -1:-10, -11:-20, -21:-30 (27 undeleted: the last is short).
    pages = []
    for k in range(3):
        rng = f"-{10 * k + 1}:-{10 * k + 10}"
        typ, data = c.uid("SEARCH", "RETURN", f"(PARTIAL {rng})", "UNDELETED")
        assert typ == "OK", data
        _, lines = c.response("ESEARCH")
        line = lines[0].decode()
        assert f"PARTIAL ({rng} " in line, line
        pages.append(line.rsplit(" ", 1)[1].rstrip(")"))
    assert pages == ["19,21:29", "8:9,11:18", "1:7"], pages
    typ, data = c.uid("SEARCH", "RETURN", "(PARTIAL 100:200 COUNT)", "UNDELETED")
    assert typ == "OK"
    assert c.response("ESEARCH")[1][0].decode().endswith("PARTIAL (100:200 NIL) COUNT 27")

    # UID FETCH 1:* (FLAGS) (PARTIAL -1:-3): the last three messages only.
    typ, data = c.uid("FETCH", "1:*", "(FLAGS)", "(PARTIAL -1:-3)")
    assert typ == "OK", data
    uids = [int(d.split(b"UID ")[1].split(b" ")[0].rstrip(b")")) for d in data]
    assert uids == [28, 29, 30], data
    c.logout()
