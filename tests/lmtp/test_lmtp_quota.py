"""LMTP delivery to an account over quota: `552 5.2.2` for that recipient (or `452 4.2.2` with
`[lmtp] quota_temporary = true`), the other recipients still get the message."""

from conftest import lmtp_server
from helpers import Raw, messages


def over_quota_delivery(server):
    """alice may hold one message and holds one; a message for alice and bob."""
    r = server.cli("quota", "set", "alice", "--messages", "1")
    assert r.returncode == 0, r.stderr
    c = Raw(server)
    c.send("LHLO mx\r\n")
    c.reply()
    c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    assert c.replies(3)[2].startswith("354")
    c.send("Subject: first\r\n\r\nfits\r\n.\r\n")
    assert c.reply() == ["250 2.0.0 <alice@example.org> Delivered"]
    c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.org>\r\n"
           "RCPT TO:<bob@example.org>\r\nDATA\r\n")
    assert c.replies(4)[3].startswith("354")
    c.send("Subject: second\r\n\r\ntoo much for alice\r\n.\r\n")
    got = c.replies(2)
    c.send("QUIT\r\n")
    c.close()
    return got


def test_over_quota_recipient_is_refused_permanently(make_server):
    server = make_server()
    got = over_quota_delivery(server)
    assert got == ["552 5.2.2 <alice@example.org> Mailbox full",
                   "250 2.0.0 <bob@example.org> Delivered"], got
    assert len(messages(server, "alice")) == 1
    assert [b"Subject: second" in m for m in messages(server, "bob")] == [True]
    # Room again: delivered.
    assert server.cli("quota", "set", "alice", "--messages", "none").returncode == 0
    c = Raw(server)
    c.send("LHLO mx\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    c.reply()
    assert c.replies(3)[2].startswith("354")
    c.send("Subject: third\r\n\r\nx\r\n.\r\n")
    assert c.reply() == ["250 2.0.0 <alice@example.org> Delivered"]
    c.close()


def test_over_quota_recipient_is_deferred_when_temporary(make_server):
    server = make_server(extra_config="quota_temporary = true\n")
    got = over_quota_delivery(server)
    assert got == ["452 4.2.2 <alice@example.org> Mailbox full",
                   "250 2.0.0 <bob@example.org> Delivered"], got
    assert len(messages(server, "alice")) == 1


def test_default_quota_from_config_applies_to_lmtp(make_server):
    server = make_server(extra_config='[quota]\nstorage = "1K"\n')
    c = Raw(server)
    c.send("LHLO mx\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
    c.reply()
    assert c.replies(3)[2].startswith("354")
    c.send(b"Subject: big\r\n\r\n" + b"x" * 2000 + b"\r\n.\r\n")
    assert c.reply() == ["552 5.2.2 <alice@example.org> Mailbox full"]
    c.close()
    assert messages(server, "alice") == []
    assert "storage 0/1K (default)" in server.cli("quota", "get", "alice").stdout
