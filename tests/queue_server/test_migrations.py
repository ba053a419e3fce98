"""Migrations: the repository's alembic.ini works from the checkout, every revision upgrades and
downgrades, and the SQLAlchemy models match what the migrations build (no drift). SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from queue_server.storage import Base, make_engine
from tests.support.live_server import ROOT


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return request.getfixturevalue("fresh_postgres")


def alembic(url: str, *args: str, cwd=ROOT) -> str:
    """The `alembic` command line as an operator types it in the checkout (a real process)."""
    run = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"db={url}", *args],
                         cwd=cwd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def drift(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_and_no_drift(empty_db):
    models = set(Base.metadata.tables)
    alembic(empty_db, "upgrade", "head")
    assert tables(empty_db) == models | {"alembic_version"}
    assert drift(empty_db) == [], "models and migrations differ: write a revision (alembic revision --autogenerate)"
    alembic(empty_db, "downgrade", "base")
    assert tables(empty_db) - {"alembic_version"} == set(), "downgrade to base left tables behind"
    alembic(empty_db, "upgrade", "head")
    assert tables(empty_db) == models | {"alembic_version"}
    assert drift(empty_db) == []
    assert "(head)" in alembic(empty_db, "current")


def test_each_revision_steps_down_and_up_one_at_a_time(empty_db):
    """Every downgrade() undoes its upgrade(): walk the history one revision at a time."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert revisions, "no migrations found"
    alembic(empty_db, "upgrade", "head")
    for _ in revisions:
        alembic(empty_db, "downgrade", "-1")
    assert tables(empty_db) - {"alembic_version"} == set()
    for _ in revisions:
        alembic(empty_db, "upgrade", "+1")
    assert drift(empty_db) == []


def test_alembic_defaults_to_the_servers_database_in_the_working_directory(tmp_path):
    """Without -x db: var/madoguchi.db relative to where it runs, as `run.py server` uses."""
    run = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "upgrade", "head"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "alembic_version" in tables(f"sqlite:///{tmp_path / 'var' / 'madoguchi.db'}")


def test_the_server_and_the_alembic_command_agree_on_the_head(tmp_path):
    """A database the server migrated (Store.migrate) is at the head the command line sees."""
    from queue_server.storage import Store

    url = f"sqlite:///{tmp_path / 's.db'}"
    Store(url).migrate()
    assert "(head)" in alembic(url, "current")
    assert drift(url) == []


def test_the_alembic_command_refuses_while_a_server_leads_the_database(empty_db, tmp_path):
    """Downgrading under a running server would break it: the command names the server and stops."""
    from tests.support.server_process import Server

    server = Server(empty_db, tmp_path / "secrets.toml").listening()
    try:
        run = subprocess.run([sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"db={empty_db}",
                              "downgrade", "base"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode != 0
        assert "a madoguchi server is running on this database" in run.stdout + run.stderr
        assert "force=1" in run.stdout + run.stderr
        assert tables(empty_db) >= set(Base.metadata.tables), "the refused downgrade dropped tables"
        assert server.health()[0] == 200
    finally:
        server.kill()
    assert "(head)" in alembic(empty_db, "current")  # once the server is gone, the command works
