"""Import and export tests: the real `mailkeep` binary (see tests/lib/mkserver.py) and, where it
can run here, Dovecot's `doveadm` to write a Maildir the way Dovecot does."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import (  # noqa: E402,F401
    BIN, PASSWORD, ROOT, Server, assert_responsive, server_fixtures,
)


server, make_server = server_fixtures(Server)
