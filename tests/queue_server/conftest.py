import pytest

from queue_server.server import QueueServer
from tests.support.live_server import LiveServer
from tests.support.postgres import fresh_postgres, postgres_url  # noqa: F401  (fixtures)

from .writer_support import HeldStore, InProcess, make_server


@pytest.fixture
def live(tmp_path):
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml").start()
    yield srv
    srv.kill()


@pytest.fixture
def held(tmp_path):
    """The in-process server whose store can hold the writer inside its commit (HeldStore)."""
    qs = make_server(tmp_path, cls=QueueServer, store=HeldStore(f"sqlite:///{tmp_path / 'w.db'}"))
    srv = InProcess(qs)
    yield srv
    qs.store.release()
    srv.stop()
