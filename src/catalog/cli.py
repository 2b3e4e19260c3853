"""The `catalog` command: serve, migrate, seed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from alembic.config import Config

from catalog.config import Settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Product catalog service")

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str | None = None) -> Config:
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
    from catalog.seed import seed_database

    result = asyncio.run(
        seed_database(Settings(), products=products, seed=seed_number, if_empty=if_empty)
    )
    typer.echo(result)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the API with uvicorn (uvloop + httptools)."""
    import uvicorn

    settings = Settings()  # fail fast on invalid settings, before forking workers
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
