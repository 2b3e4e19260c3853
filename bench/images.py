"""Uploads do not block other requests: p95 of `GET /api/v1/products/{id}` while large images
are being processed, against the same figure on an idle server.

The real server (`catalog serve`, one worker, PostgreSQL + Redis, local media storage in a
temporary folder) runs on 127.0.0.1. The benchmark

1. measures GET /api/v1/products/{id} with `--readers` concurrent readers for
   `--idle-seconds` while nothing else happens;
2. uploads `--uploads` images of `--width`x`--height` at once (one request each), `--rounds`
   times, with the same readers running; only the reads that start while an upload is in
   progress count;
3. prints both p95 figures and their ratio (the target is at most 2x).

    uv run python -m bench.images            # or: make bench-images

Everything is bounded by `--max-seconds`; the database and the Redis keys are removed after.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bench.common import REDIS_URL, delete_redis_keys, throwaway_database
from bench.load import HOST, BenchError, Server, catalog_env, free_port, wait_until_quiet
from catalog.cli import run_migrations

API = "/api/v1"
ADMIN_EMAIL = "bench-images-admin@example.com"


def make_image(index: int, width: int, height: int) -> bytes:
    """A photo-like JPEG (smooth gradients and grain); each index gives different bytes."""
    gradient = Image.linear_gradient("L").rotate(index * 37).resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 10 + index)
    image = Image.merge("RGB", (gradient, grain, radial))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[94]


async def create_admin(env: dict[str, str], password: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *["uv", "run", "--frozen", "catalog", "create-user", "--email", ADMIN_EMAIL],
        *["--role", "admin", "--password-stdin"],
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate((password + "\n").encode())
    if proc.returncode != 0:
        raise BenchError(f"create-user failed: {out.decode(errors='replace')}")


async def reader(
    client: httpx.AsyncClient, path: str, stop: asyncio.Event, out: list[tuple[float, float]]
) -> None:
    """GET `path` back to back until `stop`; records (start, latency in ms)."""
    while not stop.is_set():
        started = time.perf_counter()
        r = await client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if r.status_code != 200:
            raise BenchError(f"GET {path}: {r.status_code} {r.text[:200]}")
        out.append((started, elapsed))


async def read_while(
    client: httpx.AsyncClient, path: str, readers: int, work: asyncio.Future[Any] | float
) -> list[tuple[float, float]]:
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(reader(client, path, stop, samples)) for _ in range(readers)]
    try:
        if isinstance(work, float):
            await asyncio.sleep(work)
        else:
            await work
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return samples


async def upload(client: httpx.AsyncClient, product_id: str, name: str, data: bytes) -> float:
    started = time.perf_counter()
    r = await client.post(
        f"{API}/products/{product_id}/images",
        files=[("files", (name, data, "image/jpeg"))],
        timeout=300,
    )
    if r.status_code != 201:
        raise BenchError(f"upload: {r.status_code} {r.text[:300]}")
    return time.perf_counter() - started


async def measure(server: Server, password: str, args: argparse.Namespace) -> int:
    print(f"making {args.uploads} {args.width}x{args.height} JPEG images ...", flush=True)
    images = await asyncio.gather(
        *[
            asyncio.to_thread(make_image, i, args.width, args.height)
            for i in range(args.uploads * args.rounds)
        ]
    )
    sizes = ", ".join(f"{len(d) / 1e6:.1f} MB" for d in images[: args.uploads])
    print(f"  sizes: {sizes}")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as anon:
        r = await anon.post(
            f"{API}/auth/token", data={"username": ADMIN_EMAIL, "password": password}
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        admin_headers = {"Authorization": f"Bearer {token}"}
        r = await anon.post(
            f"{API}/products",
            headers=admin_headers,
            json={
                "sku": "BENCH-IMAGES-1",
                "name": "Benchmark product",
                "currency": "EUR",
                "price": "10.00",
                "stock": 5,
                "status": "active",
            },
        )
        r.raise_for_status()
        product_id = r.json()["id"]
        path = f"{API}/products/{product_id}"
        # Warm up: connections, code paths, the cache.
        await read_while(anon, path, args.readers, 2.0)

        usage = await wait_until_quiet(args.quiet_seconds)
        print(f"idle: {args.readers} readers for {args.idle_seconds:g}s ({usage.describe()})")
        idle = [ms for _, ms in await read_while(anon, path, args.readers, args.idle_seconds)]

        busy: list[float] = []
        upload_seconds: list[float] = []
        async with httpx.AsyncClient(base_url=server.base_url, headers=admin_headers) as writer:
            for round_no in range(args.rounds):
                batch = images[round_no * args.uploads : (round_no + 1) * args.uploads]
                started = time.perf_counter()
                work = asyncio.ensure_future(
                    asyncio.gather(
                        *[
                            upload(writer, product_id, f"big-{round_no}-{i}.jpg", data)
                            for i, data in enumerate(batch)
                        ]
                    )
                )
                samples = await read_while(anon, path, args.readers, work)
                ended = time.perf_counter()
                upload_seconds.extend(work.result())
                busy.extend(ms for start, ms in samples if started <= start < ended)
                print(
                    f"round {round_no + 1}: {len(batch)} uploads in {ended - started:.2f}s, "
                    f"{len([s for s, _ in samples if started <= s < ended])} reads meanwhile"
                )

    idle_p95, busy_p95 = p95(idle), p95(busy)
    ratio = busy_p95 / idle_p95
    print()
    print(f"GET /api/v1/products/{{id}}, {args.readers} concurrent readers, one server worker")
    print(
        f"  idle:        {len(idle):6d} reads  p50 {statistics.median(idle):7.2f} ms  "
        f"p95 {idle_p95:7.2f} ms"
    )
    print(
        f"  during uploads: {len(busy):3d} reads  p50 {statistics.median(busy):7.2f} ms  "
        f"p95 {busy_p95:7.2f} ms"
    )
    print(
        f"  upload requests: median {statistics.median(upload_seconds):.2f}s, "
        f"max {max(upload_seconds):.2f}s"
    )
    verdict = "ok" if ratio <= args.target else "ABOVE TARGET"
    print(f"  p95 ratio during/idle: {ratio:.2f}x (target <= {args.target:g}x: {verdict})")
    return 0 if ratio <= args.target else 1


async def run(args: argparse.Namespace) -> int:
    password = secrets.token_urlsafe(16)
    prefix = f"catalog-bench-images-{secrets.token_hex(4)}:"
    async with throwaway_database("catalog_bench_images") as url:
        await asyncio.to_thread(run_migrations, url)
        with tempfile.TemporaryDirectory(prefix="catalog-bench-media-") as media:
            env = catalog_env(url, prefix, cache=args.cache)
            env["CATALOG_MEDIA_ROOT"] = media
            await create_admin(env, password)
            port = free_port()
            argv = ["uv", "run", "--frozen", "catalog", "serve", "--host", HOST]
            argv += ["--port", str(port), "--workers", "1"]
            log = Path(media) / "server.log"
            server = Server("catalog", argv, env, port, log)
            try:
                await server.start("/health/ready")
                return await measure(server, password, args)
            finally:
                await server.stop()
                await delete_redis_keys(REDIS_URL, prefix)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--uploads", type=int, default=4, help="images processed at once")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--readers", type=int, default=2, help="concurrent GET loops")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--quiet-seconds", type=float, default=20.0)
    parser.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="response cache on (reads from memory) or off (every read queries PostgreSQL)",
    )
    parser.add_argument("--target", type=float, default=2.0)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(asyncio.wait_for(run(args), timeout=args.max_seconds))
    except TimeoutError:
        print(f"stopped after --max-seconds={args.max_seconds:g}", file=sys.stderr)
        return 2
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
