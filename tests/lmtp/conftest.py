"""LMTP delivery tests: fixtures that run the real `mailkeep` binary (see tests/lib/mkserver.py)
with an LMTP listener on TCP and a Unix socket, and `example.org` as a local domain."""

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import BIN, PASSWORD, ROOT, Server, assert_responsive  # noqa: E402,F401


def lmtp_server(extra_config="", users=("alice", "bob"), **kw):
    """A server with LMTP on 127.0.0.1:0 and DIR/lmtp.sock, `example.org` local."""
    import tempfile
    sock_dir = Path(tempfile.mkdtemp(prefix="mailkeep-lmtp-"))
    config = (f'[lmtp]\nlisten = ["127.0.0.1:0", "{sock_dir}/lmtp.sock"]\n' + extra_config)
    s = Server(extra_config=config, users=users, **kw)
    s.sock_dir = sock_dir
    cleanup = s.cleanup

    def cleanup_all():
        cleanup()
        shutil.rmtree(sock_dir, ignore_errors=True)

    s.cleanup = cleanup_all
    r = s.cli("domain", "add", "example.org")
    assert r.returncode == 0, r.stderr
    return s


@pytest.fixture
def server():
    s = lmtp_server()
    yield s
    s.cleanup()


@pytest.fixture
def make_server():
    made = []

    def make(**kw):
        s = lmtp_server(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
