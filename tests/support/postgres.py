"""A throwaway PostgreSQL cluster for tests (Debian's postgresql package, installed by make test)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def private_cluster():
    """Start a private cluster on a free loopback port; yield its SQLAlchemy URL (benchmarks use it too)."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise FileNotFoundError("PostgreSQL is not installed (make test installs Debian's postgresql)")
    as_root = os.geteuid() == 0
    base = tempfile.mkdtemp(prefix="madoguchi-pg-")
    data = os.path.join(base, "data")
    run_as: list[str] = []
    if as_root:  # initdb refuses to run as root: use the postgres system user
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*run_as, initdb, "-D", data, "-U", "madoguchi", "--auth=trust", "-E", "UTF8"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*run_as, pg_ctl, "-D", data, "-l", os.path.join(base, "log"), "-w", "-o",
                    f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        import psycopg

        for _ in range(50):
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="madoguchi", dbname="postgres",
                                     autocommit=True) as c:
                    c.execute("CREATE DATABASE madoguchi")
                break
            except psycopg.OperationalError:
                time.sleep(0.2)
        yield f"postgresql+psycopg://madoguchi@127.0.0.1:{port}/madoguchi"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """Start a private cluster on a free loopback port; yield its SQLAlchemy URL."""
    try:
        cluster = private_cluster()
        url = cluster.__enter__()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


def create_database(url: str, name: str) -> str:
    """A new, empty database in the cluster of ``url``; its URL."""
    import psycopg

    base = url.rsplit("/", 1)[0]
    host, port = base.split("@", 1)[1].split(":")
    with psycopg.connect(host=host, port=int(port), user="madoguchi", dbname="postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


_counter = iter(range(1, 10**6))


@pytest.fixture
def fresh_postgres(postgres_url):
    """A new, empty database in the session's cluster for one test."""
    yield create_database(postgres_url, f"t{next(_counter)}")
