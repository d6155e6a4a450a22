"""LMTP delivery tests: fixtures that run the real `mailkeep` binary (see tests/lib/mkserver.py)
with an LMTP listener on TCP and a Unix socket, and `example.org` as a local domain."""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import (  # noqa: E402,F401
    BIN, PASSWORD, ROOT, Server, assert_responsive, server_fixtures,
)


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


server, make_server = server_fixtures(lmtp_server)
