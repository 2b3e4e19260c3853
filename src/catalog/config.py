"""Settings, read from `CATALOG_*` environment variables and an optional `.env` file.

Two storage profiles share one code path:

* **embedded** (default): SQLite file under ``./var/``, in-process cache, local media folder;
* **production**: ``CATALOG_DATABASE_URL=postgresql+asyncpg://...`` and
  ``CATALOG_REDIS_URL=redis://...``; media on local disk or S3 (``CATALOG_MEDIA_BACKEND=s3``).
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-this-is-not-a-secret"  # noqa: S105 - refused outside development


class Environment(StrEnum):
    development = "development"
    production = "production"
    test = "test"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CATALOG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    environment: Environment = Environment.development
    secret_key: str = DEFAULT_SECRET_KEY
    database_url: str = "sqlite+aiosqlite:///./var/catalog.db"
    redis_url: str | None = None
    redis_prefix: str = "catalog:"
    media_root: Path = Path("./var/media")

    # Database
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_echo: bool = False
    # A pooled connection idle for longer is pinged before use (see `catalog.db`).
    db_ping_idle_after_s: float = Field(default=10.0, ge=0)
    # Product reads of the hot GET paths use a pool of their own on PostgreSQL (asyncpg, no
    # transaction per read); a connection found dead is retried once.
    db_read_pool_size: int = Field(default=10, ge=1)
    # Searches and suggestions use a pool of their own on PostgreSQL (see `catalog.db`).
    db_search_pool_size: int = Field(default=10, ge=1)

    # HTTP
    docs_enabled: bool = True
    # Anonymous product reads and list pages answered before routing (same answers as the
    # routers, which still take every other request); off only to compare the two.
    fast_reads_enabled: bool = True
    max_page_size: int = Field(default=100, ge=1, le=1000)
    default_page_size: int = Field(default=20, ge=1, le=1000)

    # Caching of prepared responses (Redis + in-process L1 in production, memory in embedded)
    cache_enabled: bool = True
    cache_l1_ttl_seconds: float = Field(default=5.0, ge=0.1, le=300)
    cache_ttl_seconds: float = Field(default=300.0, ge=1, description="Safety-net TTL")
    cache_list_ttl_seconds: float = Field(default=60.0, ge=1)

    # Authentication
    jwt_algorithm: Literal["HS256", "RS256", "EdDSA"] = "HS256"
    jwt_private_key: str | None = Field(
        default=None, description="PEM private key for RS256/EdDSA (HS256 uses secret_key)"
    )
    jwt_public_key: str | None = Field(default=None, description="PEM public key for RS256/EdDSA")
    jwt_issuer: str = "catalog"
    jwt_audience: str = "catalog-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_cost_kib: int = Field(default=19_456, ge=1024)

    # Rate limits (`limits` notation: "N/second|minute|hour|day")
    rate_limit_enabled: bool = True
    rate_limit_fail_open: bool = Field(
        default=True, description="Allow requests when the rate-limit storage is unreachable"
    )
    rate_limit_anonymous: str = "300/minute"
    rate_limit_authenticated: str = "1200/minute"
    rate_limit_auth: str = Field(
        default="10/minute", description="Login and registration attempts per client IP"
    )
    rate_limit_login_per_account: str = Field(
        default="20/hour", description="Login attempts per email address"
    )

    # HTTP hardening
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses/networks whose X-Forwarded-For / -Proto are believed",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    # Bulk import and export
    import_dir: Path = Field(
        default=Path("./var/imports"),
        description="Where uploaded import files are kept until their job ends (shared by the "
        "API processes and the workers: a shared volume when they run on several hosts)",
    )
    import_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    import_batch_rows: int = Field(
        default=5000, ge=1, le=20_000, description="Rows per transaction (whole products)"
    )
    import_lease_seconds: float = Field(
        default=60.0,
        ge=1,
        description="A running job whose worker stops heartbeating for this "
        "long is taken over by another worker",
    )
    import_max_attempts: int = Field(
        default=3, ge=1, description="Workers a job may outlive before it is marked failed"
    )
    import_poll_seconds: float = Field(default=2.0, gt=0)
    import_in_process: bool | None = Field(
        default=None,
        description="Run import jobs inside the API process (default: yes in the embedded "
        "profile, no in production, where `catalog worker` runs them)",
    )

    # Media (product images). `local` keeps files under `media_root`, served at /media/...;
    # `s3` puts them in a bucket (any S3-compatible store) served by it or a CDN.
    media_backend: Literal["local", "s3"] = "local"
    media_base_url: str | None = Field(
        default=None,
        description="Public URL of the stored files (a CDN); default /media, or the bucket's URL",
    )
    media_max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    media_max_pixels: int = Field(default=40_000_000, ge=10_000)
    media_max_files_per_request: int = Field(default=10, ge=1, le=100)
    media_processing_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2),
        ge=1,
        description="Images processed at once (each in a worker process)",
    )
    media_rendition_sizes: list[int] = Field(default_factory=lambda: [160, 480, 1024])
    media_jpeg_quality: int = Field(default=85, ge=30, le=100)
    media_webp_quality: int = Field(default=80, ge=30, le=100)
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = Field(
        default=None, description="For S3-compatible stores (MinIO, R2, ...); AWS when unset"
    )
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_session_token: SecretStr | None = None

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    # Monitoring: GET /metrics answers a request bearing the token or coming from an allowed
    # network (default: this machine only).
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token that grants access to /metrics"
    )
    metrics_allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Networks allowed to read /metrics without the token",
    )
    metrics_sample_seconds: float = Field(
        default=5.0, gt=0, description="How often each worker samples its pool usage"
    )
    db_slow_query_ms: float = Field(
        default=500.0, ge=0, description="Statements slower than this are logged (0: never)"
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment == Environment.production and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError(
                "CATALOG_SECRET_KEY must be set to a secret value when "
                "CATALOG_ENVIRONMENT=production"
            )
        if self.environment == Environment.production and len(self.secret_key) < 32:
            raise ValueError("CATALOG_SECRET_KEY must be at least 32 characters in production")
        if self.jwt_algorithm != "HS256" and not (self.jwt_private_key and self.jwt_public_key):
            raise ValueError(
                "CATALOG_JWT_PRIVATE_KEY and CATALOG_JWT_PUBLIC_KEY are required for "
                f"{self.jwt_algorithm}"
            )
        if self.media_backend == "s3" and not self.s3_bucket:
            raise ValueError("CATALOG_S3_BUCKET is required when CATALOG_MEDIA_BACKEND=s3")
        if not self.media_rendition_sizes or any(
            not 16 <= size <= 4096 for size in self.media_rendition_sizes
        ):
            raise ValueError("CATALOG_MEDIA_RENDITION_SIZES must be sizes from 16 to 4096 px")
        if "*" in self.cors_origins and self.cors_allow_credentials:
            raise ValueError("CORS: '*' origins cannot be combined with credentials")
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def profile(self) -> Literal["embedded", "production"]:
        """`production` when both PostgreSQL and Redis are configured."""
        if not self.is_sqlite and self.redis_url:
            return "production"
        return "embedded"

    @property
    def runs_imports_in_process(self) -> bool:
        if self.import_in_process is not None:
            return self.import_in_process
        return self.profile == "embedded"

    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for PostgreSQL / in-memory SQLite."""
        if not self.is_sqlite:
            return None
        _, _, rest = self.database_url.partition(":///")
        if not rest or rest.startswith(":memory:"):
            return None
        return Path(rest)
