"""Settings: profiles, the production secret guard and `CATALOG_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from catalog.config import DEFAULT_SECRET_KEY, Environment, Settings

PG_URL = "postgresql+asyncpg://catalog@db.internal:5432/catalog"
REDIS_URL = "redis://cache.internal:6379/0"
LONG_SECRET = "s" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No `CATALOG_*` variable nor `.env` file of the developer's machine leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("CATALOG_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_default_profile_is_embedded_sqlite_under_var() -> None:
    settings = Settings()
    assert settings.environment == Environment.development
    assert settings.profile == "embedded"
    assert settings.is_sqlite
    assert settings.redis_url is None
    path = settings.sqlite_path()
    assert path is not None
    assert path == Path("./var/catalog.db")
    assert path.parts[0] == "var"
    assert settings.media_root == Path("./var/media")


def test_in_memory_sqlite_has_no_file() -> None:
    assert Settings(database_url="sqlite+aiosqlite:///:memory:").sqlite_path() is None
    assert Settings(database_url=PG_URL).sqlite_path() is None


def test_production_profile_needs_postgres_and_redis() -> None:
    both = Settings(database_url=PG_URL, redis_url=REDIS_URL)
    assert both.profile == "production"
    assert not both.is_sqlite

    postgres_only = Settings(database_url=PG_URL)
    assert postgres_only.profile == "embedded"
    assert not postgres_only.is_sqlite

    redis_only = Settings(redis_url=REDIS_URL)
    assert redis_only.profile == "embedded"
    assert redis_only.is_sqlite


def test_production_environment_refuses_the_default_secret() -> None:
    with pytest.raises(ValidationError, match="CATALOG_SECRET_KEY must be set"):
        Settings(environment=Environment.production)
    with pytest.raises(ValidationError, match="CATALOG_SECRET_KEY must be set"):
        Settings.model_validate({"environment": "production"})
    with pytest.raises(ValidationError, match="CATALOG_SECRET_KEY must be set"):
        Settings(environment=Environment.production, secret_key=DEFAULT_SECRET_KEY)


def test_production_environment_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(environment=Environment.production, secret_key="s" * 31)


def test_production_environment_accepts_a_long_secret() -> None:
    settings = Settings(environment=Environment.production, secret_key=LONG_SECRET)
    assert settings.environment == Environment.production
    assert settings.secret_key == LONG_SECRET


def test_default_secret_is_allowed_outside_production() -> None:
    assert Settings(environment=Environment.development).secret_key == DEFAULT_SECRET_KEY
    assert Settings(environment=Environment.test, secret_key="short").secret_key == "short"


def test_reads_catalog_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_DATABASE_URL", PG_URL)
    monkeypatch.setenv("CATALOG_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("CATALOG_REDIS_PREFIX", "shop:")
    monkeypatch.setenv("CATALOG_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CATALOG_LOG_JSON", "false")
    monkeypatch.setenv("CATALOG_MAX_PAGE_SIZE", "250")
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///ignored.db")  # no prefix: ignored
    settings = Settings()
    assert settings.database_url == PG_URL
    assert settings.redis_url == REDIS_URL
    assert settings.redis_prefix == "shop:"
    assert settings.log_level == "DEBUG"
    assert settings.log_json is False
    assert settings.max_page_size == 250
    assert settings.profile == "production"


def test_environment_variables_go_through_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="CATALOG_SECRET_KEY"):
        Settings()
    monkeypatch.setenv("CATALOG_SECRET_KEY", LONG_SECRET)
    assert Settings().environment == Environment.production

    monkeypatch.setenv("CATALOG_MAX_PAGE_SIZE", "0")
    with pytest.raises(ValidationError, match="max_page_size"):
        Settings()


def test_reads_a_dotenv_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CATALOG_REDIS_PREFIX=from-dotenv:\n", encoding="utf-8")
    assert Settings().redis_prefix == "from-dotenv:"
