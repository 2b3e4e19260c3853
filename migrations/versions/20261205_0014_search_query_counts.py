"""running counts of past queries for autocomplete

Autocomplete offered popular past queries by counting, at every suggestion, the recorded
searches (`search_event`) starting with the prefix: a scan of every search ever recorded
(500,000 recorded searches: 30-60 ms per suggestion). `search_query` keeps one row per query
that found something, with its number of searches, added to by the event recorder as it writes
the searches; suggestions read the popular ones starting with the prefix from an index.
Filled here from the searches recorded so far.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from catalog.db import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_query",
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("searches", sa.Integer(), nullable=False),
        sa.Column("last_searched_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("query", name=op.f("pk_search_query")),
    )
    with op.batch_alter_table("search_query", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_query_popular_prefix",
            ["query"],
            unique=False,
            postgresql_ops={"query": "varchar_pattern_ops"},
            postgresql_where=sa.text("searches >= 2"),
        )
    op.execute(
        "INSERT INTO search_query (query, searches, last_searched_at) "
        "SELECT query, count(*), max(created_at) FROM search_event "
        "WHERE result_count > 0 AND query <> '' GROUP BY query"
    )


def downgrade() -> None:
    with op.batch_alter_table("search_query", schema=None) as batch_op:
        batch_op.drop_index("ix_search_query_popular_prefix")
    op.drop_table("search_query")
