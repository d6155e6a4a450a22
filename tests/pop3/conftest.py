"""POP3 tests: the real `mailkeep` binary with [pop3] and [pop3s] listeners (tests/lib/mkserver.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import (  # noqa: E402,F401
    BIN, PASSWORD, ROOT, Server, assert_responsive, server_fixtures,
)

POP3_CONFIG = '[pop3]\nlisten = ["127.0.0.1:0"]\n[pop3s]\nlisten = ["127.0.0.1:0"]\n'


def pop3_server(extra_config="", pop3_extra="", **kw):
    """A server with POP3 listeners; `pop3_extra` adds keys to the [pop3] section."""
    config = POP3_CONFIG.replace("[pop3s]", pop3_extra + "[pop3s]", 1) + extra_config
    return Server(extra_config=config, wait_for=("pop3", "pop3s"), **kw)


server, make_server = server_fixtures(pop3_server)
