"""The `catalog` command: serve, migrate, seed, import, export, worker."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from catalog.config import Settings

if TYPE_CHECKING:
    from alembic.config import Config

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Product catalog service")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None = None) -> Config:
    # Imported here: the other commands (export, import, serve) start faster without Alembic.
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if database_url:
        config.attributes["database_url"] = database_url
    return config


def run_migrations(database_url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    settings = Settings(database_url=database_url) if database_url else Settings()
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.database_url), revision)


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision")] = "head",
) -> None:
    """Apply database migrations (SQLite or PostgreSQL, from CATALOG_DATABASE_URL)."""
    run_migrations(revision=revision)
    typer.echo(f"database migrated to {revision}")


@cli.command()
def seed(
    products: Annotated[int, typer.Option(min=1, help="Number of products")] = 2000,
    seed_number: Annotated[int, typer.Option("--seed", help="Random seed")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when the catalog has products")
    ] = False,
) -> None:
    """Load a realistic, deterministic demo catalog."""
    from catalog.seed import SeedConflict, seed_database

    try:
        result = asyncio.run(
            seed_database(Settings(), products=products, seed=seed_number, if_empty=if_empty)
        )
    except SeedConflict as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(result)


async def _create_user(email: str, password: str, full_name: str, role: str) -> str:
    from catalog.auth import service as auth_service
    from catalog.auth.passwords import Passwords
    from catalog.auth.revocation import MemoryRevocationStore
    from catalog.auth.tokens import TokenService
    from catalog.db import create_engine, create_sessionmaker
    from catalog.models import Role

    settings = Settings()
    auth = auth_service.Auth(
        settings=settings,
        passwords=Passwords(settings),
        tokens=TokenService(settings),
        revocations=MemoryRevocationStore(settings.access_token_ttl_seconds),
    )
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            user = await auth_service.create_user(
                session, auth, email=email, password=password, full_name=full_name, role=Role(role)
            )
            await session.commit()
            return f"created {user.role} {user.email} ({user.id})"
    finally:
        await engine.dispose()


@cli.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(help="Email address (the login)")],
    role: Annotated[str, typer.Option(help="admin, seller or buyer")] = "buyer",
    full_name: Annotated[str | None, typer.Option(help="Display name")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a user of any role (e.g. the first admin). Asks for the password unless
    --password-stdin is given."""
    from catalog.errors import CatalogError

    if role not in ("admin", "seller", "buyer"):
        typer.echo("error: --role must be admin, seller or buyer", err=True)
        raise typer.Exit(code=2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        message = asyncio.run(_create_user(email, password, full_name or email, role))
    except CatalogError as exc:
        typer.echo(f"error: {exc.detail or exc.title}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(message)


@cli.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV (one row per variant) or JSON Lines file")],
    file_format: Annotated[
        str | None,
        typer.Option("--format", help="csv or jsonl (default: from the file name)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count only; write nothing")
    ] = False,
    create_missing: Annotated[
        bool,
        typer.Option("--create-missing", help="Create the brands and categories that are missing"),
    ] = False,
    owner: Annotated[
        str | None,
        typer.Option(
            help="Email of the seller or admin owning new products (a seller's import may only "
            "change their own products)"
        ),
    ] = None,
    errors: Annotated[
        Path | None,
        typer.Option(help="Where to write the failed rows (default: FILE.errors.csv)"),
    ] = None,
) -> None:
    """Import products from a CSV or JSON Lines file, with a progress bar. Exit status: 0 all
    rows imported, 3 some rows failed (see the errors file), 1 the file could not be imported."""
    from catalog.imports.commands import CommandError, format_for, import_file

    try:
        fmt = format_for(file, file_format)
        summary = asyncio.run(
            import_file(
                Settings(),
                file,
                fmt=fmt,
                dry_run=dry_run,
                create_missing=create_missing,
                owner_email=owner,
                errors_path=errors,
            )
        )
    except CommandError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    prefix = "dry run: would have " if dry_run else ""
    typer.echo(
        f"{prefix}{summary.status}: created {summary.created}, updated {summary.updated}, "
        f"unchanged {summary.unchanged}, failed {summary.failed} "
        f"({summary.rows_total or 0} rows in {summary.seconds:.1f}s)"
    )
    if summary.errors_file is not None:
        typer.echo(f"failed rows: {summary.errors_file}")
    if summary.error:
        typer.echo(f"error: {summary.error}", err=True)
    if summary.status != "succeeded":
        raise typer.Exit(code=1)
    if summary.failed:
        raise typer.Exit(code=3)


@cli.command()
def export(
    file_format: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")
    ] = None,
) -> None:
    """Export every product (one row per variant in CSV, one product per line in JSON Lines),
    in the format `catalog import` reads."""
    from catalog.imports.commands import export_file

    if file_format not in ("csv", "jsonl"):
        typer.echo("error: --format must be csv or jsonl", err=True)
        raise typer.Exit(code=2)
    fmt: Literal["csv", "jsonl"] = "jsonl" if file_format == "jsonl" else "csv"
    if output is None:
        products, rows, seconds = asyncio.run(export_file(Settings(), fmt, sys.stdout.buffer))
    else:
        with output.open("wb") as out:
            products, rows, seconds = asyncio.run(export_file(Settings(), fmt, out))
    where = output or "stdout"
    typer.echo(
        f"exported {products} products ({rows} variants) to {where} in {seconds:.1f}s", err=True
    )


@cli.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then exit")] = False,
) -> None:
    """Run import jobs queued through the API (SIGTERM hands the current job back after its
    batch; another worker resumes it)."""
    from catalog.imports.commands import run_worker

    done = asyncio.run(run_worker(Settings(), once=once))
    if once:
        typer.echo(f"ran {done} import job(s)")


analytics_cli = typer.Typer(no_args_is_help=True, help="Analytics maintenance")
cli.add_typer(analytics_cli, name="analytics")


@analytics_cli.command("rollup")
def analytics_rollup(
    keep_days: Annotated[
        int, typer.Option(min=1, help="Keep raw product views of this many days")
    ] = 30,
) -> None:
    """Fold the product views and search clicks of complete days into daily aggregates, delete
    raw views older than --keep-days, recompute product popularity. Safe to run again."""
    from catalog.analytics.commands import run_rollup

    result = asyncio.run(run_rollup(Settings(), keep_days=keep_days))
    typer.echo(
        f"rolled up {result.days} day(s) through {result.through_day or '-'}: "
        f"{result.views} views; deleted {result.deleted_views} raw views; "
        f"popularity changed for {result.popularity_changed} product(s)"
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
    server: Annotated[
        Literal["granian", "uvicorn"],
        typer.Option(help="HTTP server: granian (default, measured faster) or uvicorn"),
    ] = "granian",
) -> None:
    """Serve the API: granian (Rust HTTP, uvloop) by default, uvicorn (uvloop + httptools) on
    request. Both were measured with the whole app; see docs/performance.md."""
    settings = Settings()  # fail fast on invalid settings, before forking workers
    metrics_dir = _multiprocess_metrics_dir() if workers > 1 else None
    try:
        if server == "granian":
            _serve_granian(settings, host=host, port=port, workers=workers, reload=reload)
        else:
            import uvicorn

            _serve(uvicorn, settings, host=host, port=port, workers=workers, reload=reload)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve_granian(settings: Settings, *, host: str, port: int, workers: int, reload: bool) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    Granian(
        "catalog.app:app_from_env",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        reload=reload,
        # The app writes its own JSON access log; a crashed worker is started again.
        log_access=False,
        log_level=LogLevels(settings.log_level.lower()),
        log_dictconfig=(
            {
                "formatters": {
                    name: {"()": "catalog.logging.json_formatter"} for name in ("generic", "access")
                }
            }
            if settings.log_json
            else None
        ),
        respawn_failed_workers=True,
    ).serve()


def _multiprocess_metrics_dir() -> Path | None:
    """Several workers share their metrics through files in `PROMETHEUS_MULTIPROC_DIR`: a fresh
    temporary directory (returned, removed after the server stops), or the one given, emptied
    of a previous run's files (then None)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    path = Path(tempfile.mkdtemp(prefix="catalog-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)  # inherited by the workers
    return path


def _serve(
    uvicorn: Any, settings: Settings, *, host: str, port: int, workers: int, reload: bool
) -> None:
    uvicorn.run(
        "catalog.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        server_header=False,
        log_config=None,
        log_level=settings.log_level.lower(),
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
