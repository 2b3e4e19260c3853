"""product views counted per viewer and write

A row of `product_view` now stands for `views` reads of one product by one viewer (user or
anonymous session) that the event recorder wrote together (about a second's worth); existing
rows are one read each.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product_view", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("views", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("product_view", schema=None) as batch_op:
        batch_op.drop_column("views")
