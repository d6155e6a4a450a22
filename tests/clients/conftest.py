"""Fixtures that run the real `mailkeep` binary (see tests/lib/mkserver.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import BIN, PASSWORD, ROOT, Server, assert_responsive  # noqa: E402,F401


@pytest.fixture
def server():
    s = Server()
    yield s
    s.cleanup()


@pytest.fixture
def make_server():
    made = []

    def make(**kw):
        s = Server(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
