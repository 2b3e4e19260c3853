"""The `catalog` command: serve, migrate, seed."""

from __future__ import annotations

import asyncio
import sys
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
