"""A logged-in client that trickles a command a byte at a time is cut after the command's own
deadline ([limits] command_timeout_secs, plus literal_min_rate for literals), not after the
30-minute idle timeout; an honest slow upload within the rate still goes through."""

import socket
import time

from conftest import PASSWORD, assert_responsive


def login(server):
    s = socket.create_connection(server.imap, timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(f"a LOGIN alice {PASSWORD}\r\n".encode())
    while not (line := f.readline()).startswith(b"a "):
        pass
    assert line.startswith(b"a OK"), line
    return s, f


def test_trickled_command_is_cut_at_its_deadline(make_server):
    server = make_server(extra_config="[limits]\ncommand_timeout_secs = 2\n")
    s, f = login(server)
    start = time.monotonic()
    cut = None
    for b in b"b NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP NOOP\r\n":
        try:
            s.sendall(bytes([b]))
        except OSError:
            cut = time.monotonic() - start
            break
        assert_responsive(server)
        time.sleep(0.2)
        if cut is None and time.monotonic() - start > 6:
            break
    s.settimeout(3)
    rest = f.read()
    took = time.monotonic() - start
    assert b"* BYE [LIMIT]" in rest, rest
    assert took < 6, f"cut after {took:.1f} s"
    assert "took longer than its deadline" in (server.dir / "server.log").read_text()


def test_slow_literal_within_the_rate_goes_through(make_server):
    # 40,000 bytes at >= 20,000 B/s: 2 s of allowance plus the 2 s of the command.
    server = make_server(extra_config="[limits]\ncommand_timeout_secs = 2\n"
                                      "literal_min_rate = 20000\n")
    s, f = login(server)
    body = (b"Subject: slow\r\n\r\n" + b"x" * 78 + b"\r\n") * 500
    s.sendall(b"c APPEND INBOX {%d+}\r\n" % len(body))
    start = time.monotonic()
    for i in range(0, len(body), 4000):  # 10 pieces over about 3 s
        s.sendall(body[i:i + 4000])
        time.sleep(0.3)
    s.sendall(b"\r\n")
    line = f.readline()
    assert line.startswith(b"c OK"), line
    assert time.monotonic() - start > 2.5  # longer than the command's own 2 s

    # The same pace with a rate that leaves no allowance: cut.
    server2 = make_server(extra_config="[limits]\ncommand_timeout_secs = 2\n"
                                       "literal_min_rate = 1000000000\n")
    s2, f2 = login(server2)
    s2.sendall(b"d APPEND INBOX {%d+}\r\n" % len(body))
    try:
        for i in range(0, len(body), 4000):
            s2.sendall(body[i:i + 4000])
            time.sleep(0.3)
    except OSError:
        pass
    s2.settimeout(3)
    assert b"* BYE [LIMIT]" in f2.read()
