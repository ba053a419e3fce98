"""Alembic environment, two ways in.

- From queue_server.storage.migrate() (the server at start-up): a connection is handed over in
  ``config.attributes["connection"]``.
- From the `alembic` command with the repository's alembic.ini: the database is ``-x db=URL``, else
  the ``sqlalchemy.url`` option if someone sets one, else the server's default (var/madoguchi.db,
  relative to the working directory, as for `run.py server`).
"""

from logging.config import fileConfig

from alembic import context

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
        engine = make_engine(database_url())  # the server's engine: SQLite gets the same WAL pragmas
        try:
            with engine.begin() as connection:
                _run(connection)
        finally:
            engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
