"""QUOTA (RFC 9208) with Python's imaplib (getquotaroot, getquota, setquota) and the
`mailkeep quota` commands, against the real binary."""

import imaplib

from conftest import PASSWORD


def login(server, user):
    c = imaplib.IMAP4(*server.imap)
    assert c.login(user, PASSWORD)[0] == "OK"
    return c


def test_imaplib_quota_commands(make_server):
    server = make_server(extra_config='[quota]\nmessages = 3\nstorage = "10K"\n',
                         users=("alice", "admin"))
    c = login(server, "alice")
    caps = c.capability()[1][0].decode().split()
    for cap in ("QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "QUOTASET"):
        assert cap in caps, caps
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK"
    assert data == [[b'INBOX ""'], [b'"" (STORAGE 0 10 MESSAGE 0 3)']], data
    for i in range(3):
        typ, _ = c.append("INBOX", None, None, b"Subject: %d\r\n\r\n%s\r\n" % (i, b"x" * 1000))
        assert typ == "OK"
    typ, data = c.getquota('""')
    assert (typ, data) == ("OK", [b'"" (STORAGE 3 10 MESSAGE 3 3)']), data
    # Over the message limit: NO [OVERQUOTA], nothing stored.
    typ, data = c.append("INBOX", None, None, b"Subject: 4\r\n\r\nno room\r\n")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    c.select("INBOX")
    typ, data = c.copy("1", "Archive")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    # A MOVE inside the account does not grow usage.
    typ, data = c._simple_command("MOVE", "1", "Archive")
    assert typ == "OK", data
    assert c.status("INBOX", "(MESSAGES)")[1] == [b'INBOX (MESSAGES 2)']
    # Only the administrator sets quotas.
    typ, data = c.setquota('""', "(STORAGE 100)")
    assert typ == "NO" and data[0].startswith(b"[NOPERM]"), data
    c.logout()

    a = login(server, "admin")
    typ, data = a.setquota("alice", "(STORAGE 20 MESSAGE 10)")
    assert (typ, data) == ("OK", [b'"alice" (STORAGE 3 20 MESSAGE 3 10)']), data
    typ, data = a.getquota("nobody")
    assert typ == "NO" and data[0].startswith(b"[NONEXISTENT]"), data
    a.logout()
    # The IMAP setting is the account's own, as the CLI shows.
    out = server.cli("quota", "get", "alice").stdout
    assert out.startswith("alice storage ") and "/20K (account) messages 3/10 (account)" in out
    c = login(server, "alice")
    assert c.append("INBOX", None, None, b"Subject: 4\r\n\r\nroom again\r\n")[0] == "OK"
    c.logout()


def test_cli_quota_set_get_list(make_server):
    server = make_server(extra_config="[quota]\nmessages = 100000\n")
    r = server.cli("quota", "get", "alice")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "alice storage 0/unlimited (default) messages 0/100000 (default)\n"
    r = server.cli("quota", "set", "alice", "--storage", "2G", "--messages", "5")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "alice storage 0/2G (account) messages 0/5 (account)\n"
    # Either flag alone leaves the other as it is; `none` (or 0) clears: the default again.
    r = server.cli("quota", "set", "alice", "--messages", "0")
    assert r.stdout == "alice storage 0/2G (account) messages 0/100000 (default)\n"
    r = server.cli("quota", "set", "alice", "--storage", "none")
    assert r.stdout == "alice storage 0/unlimited (default) messages 0/100000 (default)\n"
    r = server.cli("quota", "set", "bob", "--storage", "500M", "--messages", "unlimited")
    assert r.stdout == "bob storage 0/500M (account) messages 0/unlimited (account)\n"
    r = server.cli("quota", "list")
    assert r.stdout.splitlines() == [
        "alice storage 0/unlimited (default) messages 0/100000 (default)",
        "bob storage 0/500M (account) messages 0/unlimited (account)",
    ]
    # Errors: a bad size, no flag, an unknown account.
    for args, want in [(("--storage", "2X"), "unknown unit"),
                       (("--messages", "many"), "not a number"),
                       ((), "give --storage, --messages or both")]:
        r = server.cli("quota", "set", "alice", *args)
        assert r.returncode != 0 and want in r.stderr, (args, r.stderr)
    r = server.cli("quota", "set", "nobody", "--storage", "1K")
    assert r.returncode != 0 and "no such account" in r.stderr
    r = server.cli("quota", "get", "nobody")
    assert r.returncode != 0 and "no such account" in r.stderr
    # The running server enforces a limit set by the CLI at once; usage is in bytes.
    assert server.cli("quota", "set", "alice", "--storage", "1K").returncode == 0
    c = login(server, "alice")
    typ, data = c.append("INBOX", None, None, b"Subject: big\r\n\r\n" + b"y" * 2000 + b"\r\n")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), data
    assert c.append("INBOX", None, None, b"Subject: s\r\n\r\nsmall\r\n")[0] == "OK"
    c.logout()
    assert "alice storage 21/1K (account)" in server.cli("quota", "get", "alice").stdout
    # `mailkeep check` agrees with the usage counters.
    r = server.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
