"""MADOGUCHI_SQLITE_SYNC: the mode asked for is the mode every connection gets, and a value
SQLite does not know is refused with its name, where SQLite alone would take it as NORMAL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

import run
from queue_server.core.problems import ConfigError
from queue_server.storage import Store

LEVEL = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}


@pytest.mark.parametrize("given, mode", [(None, "NORMAL"), ("full", "FULL"), (" Extra ", "EXTRA"), ("0", "OFF")])
def test_every_connection_gets_the_mode_asked_for(tmp_path, monkeypatch, given, mode):
    if given is None:
        monkeypatch.delenv("MADOGUCHI_SQLITE_SYNC", raising=False)
    else:
        monkeypatch.setenv("MADOGUCHI_SQLITE_SYNC", given)
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    monkeypatch.setenv("MADOGUCHI_SQLITE_SYNC", "OFF")  # read once, at start: a later change is not half applied
    with store.engine.connect() as a, store.engine.connect() as b:  # two pooled connections
        for conn in (a, b):
            assert conn.execute(text("PRAGMA synchronous")).scalar() == LEVEL[mode]
    assert store.sqlite_sync == mode
    store.engine.dispose()


@pytest.mark.parametrize("bad", ["FUL", "garbage", "9", "FULL; DROP TABLE tickets"])
def test_a_mode_sqlite_does_not_know_is_refused_by_name(tmp_path, monkeypatch, bad):
    monkeypatch.setenv("MADOGUCHI_SQLITE_SYNC", bad)
    with pytest.raises(ConfigError) as e:
        Store(f"sqlite:///{tmp_path / 'a.db'}")
    assert "MADOGUCHI_SQLITE_SYNC" in str(e.value) and repr(bad) in str(e.value)
    assert not (tmp_path / "a.db").exists()  # refused before anything was opened


def test_the_commands_refuse_it_with_a_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MADOGUCHI_SQLITE_SYNC", "FUL")
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run.main(["init", "--db", db, "--secrets", str(tmp_path / "s.toml")]) == 1
    out = capsys.readouterr()
    assert "MADOGUCHI_SQLITE_SYNC" in out.out + out.err and "Traceback" not in out.out + out.err
    assert not (tmp_path / "a.db").exists()


def test_postgresql_urls_do_not_read_it(monkeypatch):
    monkeypatch.setenv("MADOGUCHI_SQLITE_SYNC", "FUL")  # only SQLite has the pragma
    store = Store("postgresql+psycopg://nobody@127.0.0.1:1/none")  # (no connection is made here)
    assert store.sqlite_sync is None and not store.writes_inline()
