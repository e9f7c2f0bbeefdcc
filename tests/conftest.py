"""Shared fixtures: one `engine` fixture runs every test on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from onething import Engine, VirtualClock

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("ONETHING_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_available() -> str | None:
    try:
        engine = sa.create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {problem}")
        pytest.skip(f"PostgreSQL unreachable ({problem}); set ONETHING_TEST_PG")
    return PG_URL


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the parametrized kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'onething.db'}"
        return
    admin_url = request.getfixturevalue("pg_admin_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in admin_url else "?"
    yield f"{admin_url}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock("2026-03-02T09:00:00+08:00")


@pytest.fixture
def engine(db_url: str, clock: VirtualClock) -> Iterator[Engine]:
    eng = Engine(db_url, clock=clock, load_entry_points=False)
    yield eng
    eng.close()


@pytest.fixture
def data_file():
    def get(name: str) -> Path:
        return DATA / name
    return get
