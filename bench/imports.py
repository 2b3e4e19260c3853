"""Bulk import and export throughput on a large generated catalog (PostgreSQL).

    uv run python -m bench.imports [--products N] [--json PATH]

Creates a throw-away PostgreSQL database (dropped at the end), runs the migrations and loads the
brands and categories of `generate_catalog(seed=42, products=N)`; writes its products as the
import CSV with exactly three variants each (see `three_variants`: N products, 3N variant rows)
to a temporary file, then measures, each in a child process running the real command line:

1. `catalog import FILE` into the empty catalog: variant rows/s and the child's peak RSS;
2. `catalog export --output FILE`: rows/s;
3. `catalog import` of that export: every row must come back "unchanged".

Targets (from the issue, reported and checked): import >= 10,000 variant rows/s, peak RSS
< 500 MB, export >= 50,000 rows/s. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import throwaway_database
from catalog.cli import run_migrations
from catalog.config import Settings
from catalog.db import create_engine
from catalog.imports.formats import ATTR_PREFIX, FIXED_COLUMNS, OPTION_PREFIX, format_attribute
from catalog.seed import DemoCatalog, DemoProduct, DemoVariant, generate_catalog, seed_into

TARGET_IMPORT_ROWS_S = 10_000
TARGET_PEAK_RSS_MB = 500
TARGET_EXPORT_ROWS_S = 50_000
VARIANTS_PER_PRODUCT = 3
PACKS = ("Single", "Pair", "Trio")
SUMMARY = re.compile(r"created (\d+), updated (\d+), unchanged (\d+), failed (\d+) \((\d+) rows in")


def three_variants(product: DemoProduct) -> tuple[DemoVariant, ...]:
    """Exactly three variants for `product`: its first three option combinations when it has
    that many, otherwise packs of 1, 2 and 3 (option "Pack", prices and SKUs to match)."""
    if len(product.variants) >= VARIANTS_PER_PRODUCT:
        return product.variants[:VARIANTS_PER_PRODUCT]
    first = product.variants[0]
    return tuple(
        DemoVariant(
            sku=f"{product.sku}-P{n}",
            price=first.price * n,
            stock=first.stock + n,
            option_values={"Pack": PACKS[n - 1]},
        )
        for n in range(1, VARIANTS_PER_PRODUCT + 1)
    )


def write_csv(catalog: DemoCatalog, path: Path) -> int:
    """The catalog's products as the import CSV, three variants each (`three_variants`);
    returns the number of rows."""
    variants = [three_variants(p) for p in catalog.products]
    attr_keys = sorted({k for p in catalog.products for k in p.attributes})
    option_names = sorted({name for vs in variants for v in vs for name in v.option_values})
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(
            [
                *FIXED_COLUMNS,
                *(ATTR_PREFIX + k for k in attr_keys),
                *(OPTION_PREFIX + o for o in option_names),
            ]
        )
        for p, mine in zip(catalog.products, variants, strict=True):
            head = [p.sku, p.name, p.slug, p.description, p.status, p.brand_slug,
                    p.category_path, p.currency]  # fmt: skip
            attrs = [
                format_attribute(p.attributes[k]) if k in p.attributes else "" for k in attr_keys
            ]
            for v in mine:
                writer.writerow(
                    [*head, v.sku, str(v.price), v.stock, *attrs,
                     *(v.option_values.get(o, "") for o in option_names)]
                )  # fmt: skip
                rows += 1
    return rows


async def prepare(url: str, catalog: DemoCatalog) -> None:
    await asyncio.to_thread(run_migrations, url)
    engine = create_engine(Settings(database_url=url))
    try:
        refs_only = DemoCatalog(
            seed=catalog.seed, brands=catalog.brands, categories=catalog.categories, products=[]
        )
        async with engine.begin() as conn:
            await seed_into(conn, refs_only)
    finally:
        await engine.dispose()


def children_cpu_s() -> float:
    """User + system CPU time of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Child:
    seconds: float
    cpu_s: float
    db_cpu_s: float | None  # the PostgreSQL backends serving the database (None: unknown)
    peak_rss_mb: float
    stdout: str
    stderr: str


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _backend_cpu(database: str, seen: dict[int, float]) -> bool:
    """Updates `seen` (backend pid -> CPU seconds) with the PostgreSQL backends connected to
    `database` on this machine (their titles name the database); False without /proc."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return False
    marker = f" {database} ".encode()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                title = cmdline.read()
            if not title.startswith(b"postgres: ") or marker not in title + b" ":
                continue
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            seen[pid] = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return True


def _high_water_mb(pid: int) -> float | None:
    """The process's peak resident memory since it started its program (Linux `VmHWM`)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_child(args: list[str], env: dict[str, str], database: str = "") -> Child:
    """Runs `catalog ARGS...` and measures it. Its peak RSS is read from /proc while it runs:
    `getrusage` would count the memory of this process (the generated catalog) too, which
    a child has until it starts its program. The CPU time of the PostgreSQL backends serving
    `database` is sampled meanwhile (four times a second: the last quarter second of a
    backend that disconnects is missed)."""
    backends: dict[int, float] = {}
    measured = bool(database) and _backend_cpu(database, {})
    before = dict(backends)
    if measured:
        _backend_cpu(database, before)
    cpu = children_cpu_s()
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "catalog"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    polls = 0
    while True:
        peak = max(peak, _high_water_mb(process.pid) or 0.0)
        if measured and polls % 5 == 0:
            _backend_cpu(database, backends)
        polls += 1
        try:
            stdout, stderr = process.communicate(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            continue
    seconds = time.perf_counter() - started
    if process.returncode not in (0, 3):
        sys.stderr.write(stdout + stderr)
        raise SystemExit(f"catalog {args[0]} failed with status {process.returncode}")
    if not peak:  # no /proc: the largest child so far
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    db_cpu = None
    if measured:
        db_cpu = sum(s - before.get(pid, 0.0) for pid, s in backends.items())
    return Child(seconds, children_cpu_s() - cpu, db_cpu, peak, stdout, stderr)


def cpu_ms_per_1000(cpu_s: float, rows: int) -> float:
    return round(cpu_s * 1e6 / max(rows, 1), 1)


def db_ms_per_1000(cpu_s: float | None, rows: int) -> float | None:
    return None if cpu_s is None else cpu_ms_per_1000(cpu_s, rows)


def parse_summary(stdout: str) -> dict[str, int]:
    match = SUMMARY.search(stdout)
    if match is None:
        raise SystemExit(f"unexpected import output: {stdout!r}")
    keys = ("created", "updated", "unchanged", "failed", "rows")
    return dict(zip(keys, (int(g) for g in match.groups()), strict=True))


async def main_async(products: int) -> dict[str, Any]:
    results: dict[str, Any] = {"products": products}
    started = time.perf_counter()
    catalog = generate_catalog(seed=42, products=products)
    with tempfile.TemporaryDirectory(prefix="catalog-bench-import-") as tmp:
        source = Path(tmp) / "catalog.csv"
        rows = write_csv(catalog, source)
        results["variants"] = rows
        results["csv_mb"] = round(source.stat().st_size / 1e6, 1)
        results["generate_s"] = round(time.perf_counter() - started, 1)
        async with throwaway_database("catalog_bench_import") as url:
            await prepare(url, catalog)
            del catalog
            # The commands run as installed: with their compiled modules cached (a first,
            # untimed run writes the cache when the environment had turned it off).
            env = {
                **{
                    k: v
                    for k, v in os.environ.items()
                    if not k.startswith("CATALOG_") and k != "PYTHONDONTWRITEBYTECODE"
                },
                "CATALOG_DATABASE_URL": url,
                "CATALOG_LOG_LEVEL": "WARNING",
                "CATALOG_IMPORT_DIR": str(Path(tmp) / "imports"),
            }
            await asyncio.to_thread(run_child, ["export", "--output", os.devnull], env)
            print(f"importing {rows} variant rows ({results['csv_mb']} MB) ...", flush=True)
            database = url.rsplit("/", 1)[1]
            child = await asyncio.to_thread(run_child, ["import", str(source)], env, database)
            first = parse_summary(child.stdout + child.stderr)
            results["import"] = {
                **first,
                "seconds": round(child.seconds, 2),
                "rows_per_s": round(rows / child.seconds),
                "cpu_s": round(child.cpu_s, 2),
                "cpu_ms_per_1000_rows": cpu_ms_per_1000(child.cpu_s, rows),
                "db_cpu_ms_per_1000_rows": db_ms_per_1000(child.db_cpu_s, rows),
                "peak_rss_mb": round(child.peak_rss_mb, 1),
            }
            exported = Path(tmp) / "export.csv"
            child = await asyncio.to_thread(
                run_child, ["export", "--output", str(exported)], env, database
            )
            with exported.open(encoding="utf-8", newline="") as text:
                exported_rows = sum(1 for _ in csv.reader(text)) - 1
            results["export"] = {
                "rows": exported_rows,
                "seconds": round(child.seconds, 2),
                "rows_per_s": round(exported_rows / child.seconds),
                "cpu_s": round(child.cpu_s, 2),
                "cpu_ms_per_1000_rows": cpu_ms_per_1000(child.cpu_s, exported_rows),
                "db_cpu_ms_per_1000_rows": db_ms_per_1000(child.db_cpu_s, exported_rows),
                "peak_rss_mb": round(child.peak_rss_mb, 1),
                "mb": round(exported.stat().st_size / 1e6, 1),
            }
            child = await asyncio.to_thread(run_child, ["import", str(exported)], env, database)
            again = parse_summary(child.stdout + child.stderr)
            results["reimport"] = {
                **again,
                "seconds": round(child.seconds, 2),
                "rows_per_s": round(exported_rows / child.seconds),
                "cpu_s": round(child.cpu_s, 2),
                "cpu_ms_per_1000_rows": cpu_ms_per_1000(child.cpu_s, exported_rows),
                "db_cpu_ms_per_1000_rows": db_ms_per_1000(child.db_cpu_s, exported_rows),
                "peak_rss_mb": round(child.peak_rss_mb, 1),
            }
    results["peak_rss_mb_any_child"] = max(
        results[step]["peak_rss_mb"] for step in ("import", "export", "reimport")
    )
    return results


def report(results: dict[str, Any]) -> list[str]:
    imp, exp, again = results["import"], results["export"], results["reimport"]
    print(
        f"\n{results['products']} products, {results['variants']} variant rows, "
        f"{results['csv_mb']} MB CSV (generated in {results['generate_s']} s)\n"
        f"(CPU ms per 1000 rows: the command's + PostgreSQL's)\n"
        f"import    {imp['seconds']:>7.2f} s  {imp['rows_per_s']:>8} rows/s  "
        f"{imp['cpu_ms_per_1000_rows']:>6} + {imp['db_cpu_ms_per_1000_rows']} CPU ms  "
        f"peak RSS {imp['peak_rss_mb']} MB  created {imp['created']} failed {imp['failed']}\n"
        f"export    {exp['seconds']:>7.2f} s  {exp['rows_per_s']:>8} rows/s  "
        f"{exp['cpu_ms_per_1000_rows']:>6} + {exp['db_cpu_ms_per_1000_rows']} CPU ms  "
        f"{exp['rows']} rows, {exp['mb']} MB\n"
        f"re-import {again['seconds']:>7.2f} s  {again['rows_per_s']:>8} rows/s  "
        f"{again['cpu_ms_per_1000_rows']:>6} + {again['db_cpu_ms_per_1000_rows']} CPU ms  "
        f"unchanged {again['unchanged']}, created {again['created']}, "
        f"updated {again['updated']}, failed {again['failed']}"
    )
    problems = []
    if imp["created"] != results["variants"] or imp["failed"]:
        problems.append("the import did not create every row")
    if imp["rows_per_s"] < TARGET_IMPORT_ROWS_S:
        problems.append(f"import below {TARGET_IMPORT_ROWS_S} rows/s")
    if results["peak_rss_mb_any_child"] >= TARGET_PEAK_RSS_MB:
        problems.append(f"peak RSS not below {TARGET_PEAK_RSS_MB} MB")
    if exp["rows_per_s"] < TARGET_EXPORT_ROWS_S:
        problems.append(f"export below {TARGET_EXPORT_ROWS_S} rows/s")
    if exp["rows"] != results["variants"]:
        problems.append("the export does not have every row")
    if again["unchanged"] != exp["rows"]:
        problems.append("re-importing the export changed rows")
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("all targets met; the re-import of the export changed nothing")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="Also write the figures to this file")
    args = parser.parse_args()
    results = asyncio.run(main_async(args.products))
    problems = report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
