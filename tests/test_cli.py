"""The `catalog` command line: migrate and seed against a throw-away SQLite file."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog.cli import cli

runner = CliRunner()


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A SQLite file (not yet created) that `CATALOG_DATABASE_URL` points to."""
    for name in list(os.environ):
        if name.upper().startswith("CATALOG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env; ./var/ would land in tmp_path
    path = tmp_path / "data" / "catalog.db"
    monkeypatch.setenv("CATALOG_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    return path


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


def test_help_lists_the_commands() -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for command in ("serve", "migrate", "seed"):
        assert command in result.output


def test_migrate_then_seed_if_empty(database: Path) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "database migrated to head" in result.output
    assert database.is_file()
    assert _count(database, "product") == 0

    result = runner.invoke(cli, ["seed", "--products", "50", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "seeded" in result.output
    assert "50 products" in result.output
    assert _count(database, "product") == 50
    brands = _count(database, "brand")
    categories = _count(database, "category")
    variants = _count(database, "product_variant")
    assert brands >= 50
    assert variants >= 50
    assert f"{brands} brands, {categories} categories, 50 products, {variants} variants" in (
        result.output
    )

    again = runner.invoke(cli, ["seed", "--products", "50", "--if-empty"])
    assert again.exit_code == 0, again.output
    assert "nothing seeded" in again.output
    assert _count(database, "product") == 50
    assert _count(database, "brand") == brands
    assert _count(database, "product_variant") == variants


def test_seed_into_a_non_empty_catalog_fails_cleanly(database: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    first = runner.invoke(cli, ["seed", "--products", "20"])
    assert first.exit_code == 0, first.output

    result = runner.invoke(cli, ["seed", "--products", "20", "--seed", "7"])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "--if-empty" in result.output
    assert "Traceback" not in result.output
    # Nothing of the second catalog landed: the seeding is one transaction.
    assert _count(database, "product") == 20


def test_seed_refuses_a_non_positive_product_count(database: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["seed", "--products", "0"])
    assert result.exit_code == 2
    assert "--products" in result.output
    assert _count(database, "product") == 0


def test_create_user_makes_an_admin_who_can_log_in(database: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(
        cli,
        ["create-user", "--email", "Root@Example.com", "--role", "admin", "--password-stdin"],
        input="a-strong-admin-password\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin root@example.com" in result.output
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT email, role, password_hash FROM user_account").fetchone()
    assert row[0] == "root@example.com"
    assert row[1] == "admin"
    assert row[2].startswith("$argon2id$")
    assert "a-strong-admin-password" not in result.output


def test_create_user_refuses_weak_passwords_and_duplicates(database: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    weak = runner.invoke(
        cli, ["create-user", "--email", "a@example.com", "--password-stdin"], input="short\n"
    )
    assert weak.exit_code == 1
    assert "at least 10 characters" in weak.output
    args = ["create-user", "--email", "b@example.com", "--role", "seller", "--password-stdin"]
    assert runner.invoke(cli, args, input="a-strong-password-1\n").exit_code == 0
    again = runner.invoke(cli, args, input="a-strong-password-1\n")
    assert again.exit_code == 1
    assert "already exists" in again.output
    bad_role = runner.invoke(
        cli, ["create-user", "--email", "c@example.com", "--role", "root", "--password-stdin"]
    )
    assert bad_role.exit_code == 2


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_serve_answers_and_stops_cleanly(database: Path, server: str) -> None:
    """`catalog serve` with either server: both workers start (lifespan), answer, write JSON
    log lines, and a SIGTERM stops them with the lifespan's shutdown."""
    import json
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "catalog.cli", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [*argv, "--server", server],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own: nothing of it outlives the test
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    def events() -> list[str]:
        return [str(json.loads(line)["event"]) for line in list(lines) if line.startswith("{")]

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Both workers have run their lifespan's startup before the SIGTERM: a signal that
        # arrives while a worker is still starting can be lost by the server's worker process.
        deadline = time.monotonic() + 180  # a loaded machine starts workers slowly
        while events().count("startup") < 2:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"the workers did not start: {''.join(lines)[-2000:]}")
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/health/live"
        with urllib.request.urlopen(url, timeout=30) as r:
            assert r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            reader.join(timeout=30)
    output = "".join(lines)
    assert proc.returncode == 0, output[-2000:]
    assert events().count("startup") == 2, output[-2000:]
    assert events().count("shutdown") == 2, output[-2000:]
