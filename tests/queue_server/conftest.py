import pytest

from tests.support.live_server import LiveServer
from tests.support.postgres import fresh_postgres, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture
def live(tmp_path):
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml").start()
    yield srv
    srv.kill()
