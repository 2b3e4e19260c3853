"""`catalog import`, `catalog export` and `catalog worker --once` against a SQLite file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.cli import cli
from tests.imports.helpers import HEADER, parse_csv, to_csv

runner = CliRunner()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("CATALOG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "catalog.db"
    monkeypatch.setenv("CATALOG_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("CATALOG_LOG_LEVEL", "WARNING")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    return path


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql).fetchall())


def test_import_export_and_reimport(database: Path, tmp_path: Path) -> None:
    source = tmp_path / "products.csv"
    source.write_bytes(
        to_csv(
            [
                [
                    "A",
                    "Alpha lamp",
                    "",
                    "",
                    "active",
                    "lights",
                    "home/lamps",
                    "USD",
                    "A",
                    "9.50",
                    "2",
                ],
                ["B", "Beta lamp", "", "", "active", "lights", "home/lamps", "USD", "B", "-1", "2"],
            ],
            header=HEADER,
        )
    )
    result = runner.invoke(cli, ["import", str(source), "--create-missing"])
    assert result.exit_code == 3, result.output
    assert "succeeded: created 1, updated 0, unchanged 0, failed 1" in result.output
    errors_file = tmp_path / "products.csv.errors.csv"
    assert f"failed rows: {errors_file}" in result.output
    errors = parse_csv(errors_file.read_text())
    assert [(e["error_row"], e["error_field"]) for e in errors] == [("3", "price")]
    assert _rows(database, "SELECT sku, total_stock FROM product") == [("A", 2)]
    assert _rows(database, "SELECT slug FROM brand") == [("lights",)]

    dry = runner.invoke(cli, ["import", str(source), "--dry-run"])
    assert dry.exit_code == 3, dry.output
    assert "dry run: would have succeeded: created 0, updated 0, unchanged 1, failed 1" in (
        dry.output
    )

    exported = tmp_path / "export.jsonl"
    result = runner.invoke(cli, ["export", "--format", "jsonl", "--output", str(exported)])
    assert result.exit_code == 0, result.output
    assert "exported 1 products (1 variants)" in result.output
    assert '"category":"home/lamps"' in exported.read_text()
    again = runner.invoke(cli, ["import", str(exported)])
    assert again.exit_code == 0, again.output
    assert "created 0, updated 0, unchanged 1, failed 0" in again.output

    stdout = runner.invoke(cli, ["export"])
    assert stdout.exit_code == 0
    assert parse_csv(stdout.stdout)[0]["product_sku"] == "A"


def test_import_refuses_unknown_owner_and_missing_file(database: Path, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert "no such file" in result.output
    source = tmp_path / "p.csv"
    source.write_bytes(to_csv([["A", "A", "", "", "", "", "", "USD", "A", "1", "1"]]))
    result = runner.invoke(cli, ["import", str(source), "--owner", "ghost@example.com"])
    assert result.exit_code == 1
    assert "no user with the email" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"product_sku,sku\nA,A\n")
    result = runner.invoke(cli, ["import", str(bad)])
    assert result.exit_code == 1
    assert "Missing required column(s): price" in result.output


def test_worker_once_runs_queued_jobs(database: Path) -> None:
    result = runner.invoke(cli, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "ran 0 import job(s)" in result.output
