"""Alembic environment, two ways in.

- From queue_server.storage.migrate() (the server at start-up): a connection is handed over in
  ``config.attributes["connection"]``.
- From the `alembic` command with the repository's alembic.ini: the database is ``-x db=URL``, else
  the ``sqlalchemy.url`` option if someone sets one, else the server's default (var/madoguchi.db,
  relative to the working directory, as for `run.py server`). It refuses while a server leads that
  database (queue_server/leader.py) unless ``-x force=1``.
"""

import contextlib
from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError

from queue_server import leader
from queue_server.storage import Base, default_url, make_engine

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return (context.get_x_argument(as_dictionary=True).get("db")
            or config.get_main_option("sqlalchemy.url")
            or default_url())


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # the `alembic` command line
        if config.config_file_name:
            fileConfig(config.config_file_name, disable_existing_loggers=False)
        url = database_url()
        # a running server expects the schema it started with: refuse unless `-x force=1`
        force = context.get_x_argument(as_dictionary=True).get("force") == "1"
        try:
            with contextlib.nullcontext() if force else leader.offline(url):
                engine = make_engine(url)  # the server's engine: SQLite gets the same WAL pragmas
                try:
                    with engine.begin() as connection:
                        _run(connection)
                finally:
                    engine.dispose()
        except leader.NotLeader as e:
            raise CommandError(f"{e} (or add -x force=1 if you know what you are doing)") from None
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
