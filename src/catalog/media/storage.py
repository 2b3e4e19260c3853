"""The `MediaStorage` seam: where image files live and the URL they are served from.

Keys are content-addressed (`images/ab/<sha256 of the file>.webp`), so a file never changes
once written: it can be cached forever, writing it twice is harmless, and two images with the
same bytes share one file. Only keys of that shape are accepted, which keeps every path inside
the storage root.

* `LocalMediaStorage`: files under `settings.media_root`, served by the app at `/media/...`.
* `S3MediaStorage`: objects in an S3 bucket (or any S3-compatible store) through obstore, served
  by the bucket or a CDN in front of it (`CATALOG_MEDIA_BASE_URL`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from catalog.config import Settings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
KEY_PATTERN = re.compile(r"^images/([0-9a-f]{2})/\1[0-9a-f]{62}\.(jpg|png|webp)$")


class InvalidKey(ValueError):
    pass


def content_key(data: bytes, fmt: str) -> str:
    """The storage key of a file: its SHA-256 and the extension of its format."""
    digest = hashlib.sha256(data).hexdigest()
    return f"images/{digest[:2]}/{digest}.{EXTENSIONS[fmt]}"


def check_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidKey(f"not a media key: {key!r}")
    return key


def content_type(key: str) -> str:
    return CONTENT_TYPES[key.rsplit(".", 1)[-1]]


class MediaStorage(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key` (a no-op when the file is already there)."""
        ...

    async def delete(self, keys: Sequence[str]) -> None:
        """Remove files; missing ones are ignored."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def keys(self) -> list[str]:
        """Every stored key (maintenance and tests)."""
        ...

    def url(self, key: str) -> str: ...

    async def check(self) -> None:
        """Raise when the storage cannot be used (readiness probe)."""
        ...

    async def close(self) -> None: ...


class LocalMediaStorage:
    """Files on local disk, written atomically (temporary file + rename)."""

    def __init__(self, root: Path, base_url: str = "/media") -> None:
        self.root = root.resolve()
        self.base_url = base_url.rstrip("/")

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):  # unreachable with checked keys; kept as a guard
            raise InvalidKey(key)
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self.path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await anyio.to_thread.run_sync(self._put, key, data)

    def _delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            path = self.path(key)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(OSError):  # only when empty
                path.parent.rmdir()

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await anyio.to_thread.run_sync(self._delete, list(keys))

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self.path(key).is_file)

    def _keys(self) -> list[str]:
        base = self.root / "images"
        if not base.is_dir():
            return []
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.glob("*/*")
            if p.is_file() and KEY_PATTERN.fullmatch(p.relative_to(self.root).as_posix())
        )

    async def keys(self) -> list[str]:
        return await anyio.to_thread.run_sync(self._keys)

    def url(self, key: str) -> str:
        return f"{self.base_url}/{check_key(key)}"

    def _check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"{self.root} is not writable")

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self._check)

    async def close(self) -> None:
        return None


class S3MediaStorage:
    """Objects in an S3 bucket under an optional prefix, uploaded with their content type and
    a long-lived `Cache-Control`."""

    def __init__(self, store: S3Store, public_base_url: str) -> None:
        self.store = store
        self.base_url = public_base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> S3MediaStorage:
        assert settings.s3_bucket is not None
        config: S3Config = {"region": settings.s3_region}
        if settings.s3_endpoint_url:
            config["endpoint"] = settings.s3_endpoint_url
            config["virtual_hosted_style_request"] = False
        if settings.s3_access_key_id:
            config["access_key_id"] = settings.s3_access_key_id
        if settings.s3_secret_access_key:
            config["secret_access_key"] = settings.s3_secret_access_key.get_secret_value()
        if settings.s3_session_token:
            config["session_token"] = settings.s3_session_token.get_secret_value()
        client: ClientConfig = {
            "allow_http": bool(
                settings.s3_endpoint_url and settings.s3_endpoint_url.startswith("http://")
            ),
            "connect_timeout": timedelta(seconds=5),
            "timeout": timedelta(seconds=60),
        }
        prefix = settings.s3_prefix.strip("/")
        store = S3Store(
            settings.s3_bucket, prefix=prefix or None, config=config, client_options=client
        )
        base = settings.media_base_url
        if base is None:
            if settings.s3_endpoint_url:
                base = f"{settings.s3_endpoint_url.rstrip('/')}/{settings.s3_bucket}"
            else:
                base = f"https://{settings.s3_bucket}.s3.{settings.s3_region}.amazonaws.com"
            if prefix:
                base = f"{base}/{prefix}"
        return cls(store, base)

    async def put(self, key: str, data: bytes) -> None:
        check_key(key)
        await obstore.put_async(
            self.store,
            key,
            data,
            attributes={"Content-Type": content_type(key), "Cache-Control": IMMUTABLE},
        )

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            check_key(key)
        if keys:
            await obstore.delete_async(self.store, list(keys))

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self.store, check_key(key))
        except NotFoundError:
            return False
        return True

    async def keys(self) -> list[str]:
        out: list[str] = []
        async for chunk in obstore.list(self.store, "images/"):
            out.extend(meta["path"] for meta in chunk)
        return sorted(out)

    def url(self, key: str) -> str:
        return f"{self.base_url}/{check_key(key)}"

    async def check(self) -> None:
        try:
            await obstore.head_async(self.store, "images/.ready")
        except NotFoundError:
            return  # the bucket answered

    async def close(self) -> None:
        return None


def storage_from_settings(settings: Settings) -> MediaStorage:
    if settings.media_backend == "s3":
        return S3MediaStorage.from_settings(settings)
    return LocalMediaStorage(settings.media_root, settings.media_base_url or "/media")
