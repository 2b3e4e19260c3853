"""import jobs: uploaded catalog files, their progress and leases, and the rows that failed

PostgreSQL: the search vocabulary (`search_term`) of inserted products is also kept once per
statement instead of once per row: a bulk import inserts thousands of products per statement,
and a vocabulary insert per product cost about a quarter of the database's time. Renamed
products still add their terms row by row (`UPDATE OF name`), as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# `catalog_add_terms` (migrations 0003, 0004) splits a text into terms; the names of all the
# products a statement inserts, joined by spaces, give the same terms as each name alone.
STATEMENT_TERMS = [
    r"""
CREATE FUNCTION catalog_inserted_product_terms() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM catalog_add_terms(string_agg(name, ' ')) FROM inserted_product;
  RETURN NULL;
END
$$
""",
    "DROP TRIGGER product_terms ON product",
    r"""
CREATE TRIGGER product_terms AFTER UPDATE OF name ON product
FOR EACH ROW EXECUTE FUNCTION catalog_name_terms()
""",
    r"""
CREATE TRIGGER product_terms_inserted AFTER INSERT ON product
REFERENCING NEW TABLE AS inserted_product
FOR EACH STATEMENT EXECUTE FUNCTION catalog_inserted_product_terms()
""",
]
ROW_TERMS = [
    "DROP TRIGGER IF EXISTS product_terms_inserted ON product",
    "DROP TRIGGER IF EXISTS product_terms ON product",
    "DROP FUNCTION IF EXISTS catalog_inserted_product_terms()",
    r"""
CREATE TRIGGER product_terms AFTER INSERT OR UPDATE OF name ON product
FOR EACH ROW EXECUTE FUNCTION catalog_name_terms()
""",
]

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_job",
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("restrict_to_owner", sa.Boolean(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_path", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("create_missing", sa.Boolean(), nullable=False),
        sa.Column("columns", JSON_TYPE, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_import_job_status"),
        ),
        sa.CheckConstraint("format IN ('csv', 'jsonl')", name=op.f("ck_import_job_format")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["user_account.id"],
            name=op.f("fk_import_job_created_by_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_import_job_owner_id_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_job")),
    )
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_import_job_created_by_id"), ["created_by_id"], unique=False
        )
        batch_op.create_index(
            "ix_import_job_claimable",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('queued', 'running')"),
            sqlite_where=sa.text("status IN ('queued', 'running')"),
        )

    op.create_table(
        "import_row_error",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raw", JSON_TYPE, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_job.id"],
            name=op.f("fk_import_row_error_job_id_import_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_row_error")),
    )
    with op.batch_alter_table("import_row_error", schema=None) as batch_op:
        batch_op.create_index("ix_import_row_error_job_id_row", ["job_id", "row"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for statement in STATEMENT_TERMS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in ROW_TERMS:
            op.execute(statement)
    with op.batch_alter_table("import_row_error", schema=None) as batch_op:
        batch_op.drop_index("ix_import_row_error_job_id_row")
    op.drop_table("import_row_error")
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_import_job_claimable",
            postgresql_where=sa.text("status IN ('queued', 'running')"),
            sqlite_where=sa.text("status IN ('queued', 'running')"),
        )
        batch_op.drop_index(batch_op.f("ix_import_job_created_by_id"))
    op.drop_table("import_job")
