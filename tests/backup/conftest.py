"""Backup, restore, upgrade and config-check tests: the real `mailkeep` binary (see tests/lib/mkserver.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import (  # noqa: E402,F401
    BIN, PASSWORD, ROOT, Server, assert_responsive, server_fixtures,
)


server, make_server = server_fixtures(Server)
