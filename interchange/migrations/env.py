"""Alembic environment: runs on the connection handed over by interchange.store.migrate."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via interchange.store.migrate
    raise RuntimeError("run migrations with interchange.store.migrate(url)")
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
