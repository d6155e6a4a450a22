"""Mailkeep on PostgreSQL: a throwaway PostgreSQL server for the whole session (initdb into a
temporary directory, unix socket only, fsync off; as root it runs as the `postgres` user),
one database per test, and servers (`make_node`) that are nodes on that database."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import BIN, PASSWORD, ROOT, Server  # noqa: E402,F401
from pgserver import NoPostgres, Postgres, store_config  # noqa: E402,F401


@pytest.fixture(scope="session")
def pg():
    try:
        p = Postgres()
    except NoPostgres as e:
        pytest.skip(str(e))
    yield p
    p.stop()


@pytest.fixture
def make_node(pg):
    """`make_node(url, users=...)`: a mailkeep server on the PostgreSQL database `url`."""
    made = []

    def make(url, users=()):
        s = Server(extra_config="[store]\n" + store_config(url), users=users)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
