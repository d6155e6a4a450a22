"""URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524) against the real binary: alice makes
URLs for her mail, bob fetches them as `submit+bob` / `user+bob`; every tampered, expired,
reset or misdirected URL is NIL, and the answer never tells whether a mailbox or message
exists."""

import re
import socket
import time

from conftest import PASSWORD, Server, assert_responsive

HOST = "imap://alice@mail.example.org"
PART = b"Si vis pacem, para bellum.\r\n"
PNG = bytes(range(256)) * 4
MESSAGE = (
    b"From: alice@example.org\r\nSubject: peace\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\n" + PART + b"\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + __import__("base64").encodebytes(PNG).replace(b"\n", b"\r\n") + b"\r\n--b--\r\n"
)


class Client:
    """A raw IMAP connection: `cmd` returns everything up to the tagged line, literals whole."""

    def __init__(self, server, user=None, password=PASSWORD):
        self.sock = socket.create_connection(server.imap, timeout=10)
        self.f = self.sock.makefile("rb")
        self.f.readline()
        self.n = 0
        if user:
            assert b" OK " in self.cmd(f"LOGIN {user} {password}".encode())

    def cmd(self, line):
        self.n += 1
        tag = b"t%d" % self.n
        self.sock.sendall(tag + b" " + line + b"\r\n")
        out = b""
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            out += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if m:
                out += self.f.read(int(m.group(1)))
                continue
            if line.startswith(tag + b" "):
                return out

    def append(self, box, data):
        out = self.cmd(b"APPEND %s {%d+}\r\n" % (box.encode(), len(data)) + data)
        assert b" OK " in out, out
        return int(re.search(rb"APPENDUID (\d+) (\d+)", out).group(2))

    def genurlauth(self, *rumps):
        out = self.cmd(b"GENURLAUTH " + b" ".join(b'"%s" INTERNAL' % r.encode() for r in rumps))
        assert re.search(rb"\r\nt\d+ OK", b"\r\n" + out), out
        urls = re.findall(rb'"([^"]+)"', out.split(b"\r\n")[0])
        assert len(urls) == len(rumps), out
        return [u.decode() for u in urls]

    def urlfetch(self, url):
        """The data for one URL (plain form), or None for NIL."""
        out = self.cmd(b'URLFETCH "%s"' % url.encode())
        assert re.search(rb"\r\nt\d+ OK URLFETCH completed\r\n$", out), out
        first, _, rest = out.partition(b"\r\n")
        if first.endswith(b" NIL"):
            return None
        n = int(re.search(rb"\{(\d+)\}$", first).group(1))
        return rest[:n]

    def close(self):
        try:
            self.cmd(b"LOGOUT")
        finally:
            self.sock.close()


def setup(server):
    alice = Client(server, "alice")
    uid = alice.append("INBOX", MESSAGE)
    return alice, uid


def test_capability_after_login(server):
    c = Client(server)
    assert b"URLAUTH" not in c.cmd(b"CAPABILITY")
    c.cmd(b"LOGIN alice " + PASSWORD.encode())
    caps = c.cmd(b"CAPABILITY").split(b"\r\n")[0].split()
    assert b"URLAUTH" in caps and b"URLAUTH=BINARY" in caps
    # Not before login: the commands are refused there.
    c2 = Client(server)
    assert b" BAD " in c2.cmd(b'URLFETCH "x"')


def test_bob_fetches_alices_part_as_submit_and_user(server):
    alice, uid = setup(server)
    submit, user, whole = alice.genurlauth(
        f"{HOST}/INBOX/;UID={uid}/;SECTION=1;URLAUTH=submit+bob",
        f"{HOST}/INBOX/;UID={uid}/;SECTION=2;URLAUTH=user+bob",
        f"{HOST}/INBOX/;UID={uid};URLAUTH=user+bob",
    )
    assert re.fullmatch(r".*;URLAUTH=submit\+bob:internal:[0-9a-f]{64}", submit), submit
    bob = Client(server, "bob")
    assert bob.urlfetch(submit) == PART
    assert bob.urlfetch(whole) == MESSAGE
    body = bob.urlfetch(user)
    assert __import__("base64").b64decode(body) == PNG
    # RFC 5524: the decoded part, its structure describing it as sent.
    out = bob.cmd(b'URLFETCH ("%s" BODYPARTSTRUCTURE BINARY)' % user.encode())
    assert b"(BODYPARTSTRUCTURE (\"application\" \"octet-stream\" NIL NIL NIL \"binary\" 1024" in out, out
    assert b"(BINARY ~{1024}\r\n" + PNG + b")" in out, out
    out = bob.cmd(b'URLFETCH ("%s" BODYPARTSTRUCTURE BODY)' % submit.encode())
    assert b"(BODY {%d}\r\n" % len(PART) + PART + b")" in out, out
    assert b'(BODYPARTSTRUCTURE ("text" "plain" ' in out, out
    assert b'"7bit" %d 1 NIL' % len(PART) in out, out
    # alice herself is neither submit+bob nor user+bob.
    assert alice.urlfetch(submit) is None
    assert alice.urlfetch(user) is None
    # CATENATE with bob's URL (RFC 4469 §5).
    out = bob.cmd(b'APPEND Drafts CATENATE (TEXT {12+}\r\nSubject: x\r\n URL "%s")' % whole.encode())
    assert b" OK [APPENDUID" in out, out
    bob.cmd(b"SELECT Drafts")
    out = bob.cmd(b"FETCH 1 BODY.PEEK[]")
    assert PART in out
    alice.close()
    bob.close()


def tampered(url, uidvalidity):
    rump, token = url.rsplit(":internal:", 1)
    flip = "0" if token[0] != "0" else "1"
    yield "token changed", f"{rump}:internal:{flip}{token[1:]}"
    yield "token cut", f"{rump}:internal:{token[:-2]}"
    yield "token longer", f"{rump}:internal:{token}00"
    yield "no token", f"{rump}:internal:"
    yield "no verifier", rump
    yield "other mechanism", f"{rump}:xinternal:{token}"
    yield "host case", url.replace("mail.example.org", "MAIL.example.org")
    yield "user in URL changed", url.replace("imap://alice@", "imap://bob@")
    yield "unknown owner", url.replace("imap://alice@", "imap://nobody@")
    yield "other mailbox", url.replace("/INBOX/", "/Sent/")
    yield "unknown mailbox", url.replace("/INBOX/", "/Nope/")
    yield "uid changed", re.sub(r";UID=(\d+)", lambda m: f";UID={int(m.group(1)) + 1}", url)
    yield "section changed", url.replace("SECTION=1;", "SECTION=2;")
    yield "section added", url.replace(";URLAUTH", "/;SECTION=1;URLAUTH")
    yield "access widened", url.replace("user+bob", "authuser")
    yield "access anonymous", url.replace("user+bob", "anonymous")
    yield "access renamed", url.replace("user+bob", "user+carol")
    yield "uidvalidity added (wrong)", url.replace("/INBOX/", f"/INBOX;UIDVALIDITY={uidvalidity + 1}/")
    yield "expire added", url.replace(";URLAUTH", ";EXPIRE=2099-01-01T00:00:00Z;URLAUTH")
    yield "relative", url.replace(HOST, "")


def test_every_tampering_is_nil(server):
    server.add_user("carol")
    alice, uid = setup(server)
    alice.append("Sent", b"Subject: sent\r\n\r\nsent\r\n")
    v = int(re.search(rb"UIDVALIDITY (\d+)", alice.cmd(b"STATUS INBOX (UIDVALIDITY)")).group(1))
    (url,) = alice.genurlauth(f"{HOST}/INBOX/;UID={uid}/;SECTION=1;URLAUTH=user+bob")
    bob = Client(server, "bob")
    assert bob.urlfetch(url) == PART
    for what, bad in tampered(url, v):
        assert bob.urlfetch(bad) is None, what
        out = bob.cmd(b'URLFETCH ("%s" BODYPARTSTRUCTURE BINARY)' % bad.encode())
        assert out.startswith(b'* URLFETCH ("%s" NIL)\r\n' % bad.encode()), (what, out)
    # Another account named by nothing in the URL.
    carol = Client(server, "carol")
    assert carol.urlfetch(url) is None
    # Expired, and one that expires later.
    past, future = alice.genurlauth(
        f"{HOST}/INBOX/;UID={uid};EXPIRE=2001-01-01T00:00:00Z;URLAUTH=user+bob",
        f"{HOST}/INBOX/;UID={uid};EXPIRE=2099-01-01T00:00:00+01:00;URLAUTH=user+bob",
    )
    assert bob.urlfetch(past) is None
    assert bob.urlfetch(future) == MESSAGE
    # A token made for alice's Sent does not open her INBOX (one key per mailbox).
    (sent,) = alice.genurlauth(f"{HOST}/Sent/;UID=1;URLAUTH=user+bob")
    assert bob.urlfetch(sent) == b"Subject: sent\r\n\r\nsent\r\n"
    token = sent.rsplit(":", 1)[1]
    assert bob.urlfetch(f"{HOST}/INBOX/;UID=1;URLAUTH=user+bob:internal:{token}") is None
    # The same answer (NIL) whether or not the mailbox or message exists.
    for box, u in (("INBOX", uid), ("INBOX", 999), ("Nope", 1), ("Sent", 1)):
        assert bob.urlfetch(f"{HOST}/{box}/;UID={u};URLAUTH=user+bob:internal:{'0' * 64}") is None
    assert_responsive(server)


def test_resetkey_invalidates(server):
    alice, uid = setup(server)
    bob = Client(server, "bob")
    a, = alice.genurlauth(f"{HOST}/INBOX/;UID={uid};URLAUTH=user+bob")
    s, = alice.genurlauth(f"{HOST}/Sent/;UID=1;URLAUTH=user+bob")
    assert bob.urlfetch(a) == MESSAGE
    # bob's RESETKEY is about bob's own keys: alice's URL still works.
    assert b" OK " in bob.cmd(b"RESETKEY")
    assert bob.urlfetch(a) == MESSAGE
    out = alice.cmd(b"RESETKEY INBOX")
    assert b" OK [URLMECH INTERNAL]" in out, out
    assert bob.urlfetch(a) is None
    a2, = alice.genurlauth(f"{HOST}/INBOX/;UID={uid};URLAUTH=user+bob")
    assert a2 != a
    assert bob.urlfetch(a2) == MESSAGE
    assert b" OK " in alice.cmd(b"RESETKEY")
    assert bob.urlfetch(a2) is None
    assert b" NO [NONEXISTENT]" in alice.cmd(b"RESETKEY Nope")


def test_recreated_mailbox_and_uidvalidity(server):
    alice = Client(server, "alice")
    alice.cmd(b"CREATE Box")
    uid = alice.append("Box", b"Subject: one\r\n\r\none\r\n")
    v = int(re.search(rb"UIDVALIDITY (\d+)", alice.cmd(b"STATUS Box (UIDVALIDITY)")).group(1))
    with_v, without_v = alice.genurlauth(
        f"{HOST}/Box;UIDVALIDITY={v}/;UID={uid};URLAUTH=user+bob",
        f"{HOST}/Box/;UID={uid};URLAUTH=user+bob",
    )
    bob = Client(server, "bob")
    assert bob.urlfetch(with_v) == b"Subject: one\r\n\r\none\r\n"
    assert bob.urlfetch(without_v) == b"Subject: one\r\n\r\none\r\n"
    # A new mailbox of the same name (new UIDVALIDITY, new key), the same UID in it.
    assert b" OK " in alice.cmd(b"DELETE Box")
    time.sleep(1.1)  # UIDVALIDITY comes from the clock
    alice.cmd(b"CREATE Box")
    assert alice.append("Box", b"Subject: two\r\n\r\ntwo\r\n") == uid
    assert bob.urlfetch(with_v) is None
    assert bob.urlfetch(without_v) is None


def test_catenate_with_another_accounts_url_needs_a_valid_token(server):
    alice, uid = setup(server)
    bob = Client(server, "bob")
    url, = alice.genurlauth(f"{HOST}/INBOX/;UID={uid};URLAUTH=user+bob")
    rump = url.rsplit(":internal:", 1)[0]
    for bad in (rump, f"{rump}:internal:{'0' * 64}", url.replace("user+bob", "authuser"),
                f"{HOST}/INBOX/;UID={uid}", url.replace("/INBOX/", "/Sent/")):
        out = bob.cmd(b'APPEND Drafts CATENATE (URL "%s")' % bad.encode())
        assert b" NO [BADURL" in out, (bad, out)
        assert b"peace" not in out
    assert b" OK [APPENDUID" in bob.cmd(b'APPEND Drafts CATENATE (URL "%s")' % url.encode())


def test_urlfetch_answer_is_bounded(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 200000\n")
    alice = Client(server, "alice")
    uid = alice.append("INBOX", b"Subject: big\r\n\r\n" + b"x" * 150_000 + b"\r\n")
    url, = alice.genurlauth(f"{HOST}/INBOX/;UID={uid};URLAUTH=authuser")
    bob = Client(server, "bob")
    rss = server.rss_kib()
    # 100 URLs of 150 kB: 15 MB asked for; the answer stops at the APPEND limit + 1 MiB.
    out = bob.cmd(b"URLFETCH " + b" ".join([b'"%s"' % url.encode()] * 100))
    tagged = out.rsplit(b"\r\n", 2)[-2]
    assert b"NO [LIMIT]" in tagged, tagged
    assert len(out) < 2_000_000
    assert server.rss_kib() - rss < 20_000
    assert bob.urlfetch(url) is not None
    assert_responsive(server)
