"""Alembic environment: async engine from the catalog settings, batch mode on SQLite."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from catalog import models  # noqa: F401 - registers every table
from catalog.config import Settings
from catalog.db import Base, create_engine

config = context.config
target_metadata = Base.metadata


# Search structures and stored list items maintained by the database itself (triggers, FTS5
# tables) are not ORM models.
UNMAPPED_TABLES = {"search_term", "product_fts", "product_terms", "product_terms_vocab"}
UNMAPPED_COLUMNS = {
    ("product", "search_vector"),
    ("product", "name_vector"),
    ("product", "item_json"),
}
UNMAPPED_INDEXES = {
    "ix_product_search_vector",
    "ix_product_live_search_vector",
    "ix_product_live_name_vector",
    "ix_product_attributes",
    "ix_product_name_trgm",
    "ix_search_term_trgm",
}


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "table":
        return name not in UNMAPPED_TABLES and not str(name).startswith(
            ("product_fts_", "product_terms_")
        )
    if type_ == "column":
        return (parent_names.get("table_name"), name) not in UNMAPPED_COLUMNS
    if type_ == "index":
        return name not in UNMAPPED_INDEXES
    return True


def _settings() -> Settings:
    url = config.attributes.get("database_url")
    return Settings(database_url=url) if url else Settings()


def run_migrations_offline() -> None:
    settings = _settings()
    context.configure(
        url=settings.database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=settings.is_sqlite,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    # No statement timeout: rewriting every product (a new column's values) takes longer than
    # any request may on a large catalog.
    engine = create_engine(_settings().model_copy(update={"db_statement_timeout_ms": 0}))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(run_migrations_online())
