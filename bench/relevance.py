"""Search relevance on the demo catalog, against hand-written judgments.

    uv run python -m bench.relevance [--backend sqlite|postgresql] [--min-ndcg X]
                                     [--write-baseline] [--json PATH] [--verbose]

`bench/relevance_judgments.json` grades products (by SKU) for each query over the demo catalog
(`generate_catalog(seed=42, products=2000)`): 2 = exactly what the shopper asked for,
1 = related. For each backend (SQLite in a temporary file, PostgreSQL in a throw-away database)
the harness migrates, seeds the demo catalog, sends every query to
`GET /api/v1/search?q=...&page_size=10` through the real application, and reports:

* NDCG@10: DCG = sum over ranks i=1..10 of (2^rel - 1) / log2(i + 1), divided by the DCG of
  the ideal ranking of the judged products; unjudged results count as 0;
* recall@10: judged (grade >= 1) products in the top 10 / judged products; and, since many
  queries have more than 10 relevant products, the capped variant that divides by
  min(10, judged products) (1.0 = the page is full of relevant products);
* the zero-result rate, and the worst queries.

`--min-ndcg X` exits 1 when a backend's mean NDCG@10 is below X. `--write-baseline` stores the
figures in `bench/relevance_baseline.json` (rounded down to 2 decimals, minus a 0.02 tolerance),
which `tests/test_relevance.py` enforces in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import throwaway_database, unlimited_settings
from bench.search import cancel_on_sigterm, quiesce, write_json
from catalog.app import API_PREFIX, create_app
from catalog.cli import run_migrations
from catalog.config import Environment, Settings
from catalog.logging import configure_logging
from catalog.seed import generate_catalog, seed_into

BENCH_DIR = Path(__file__).resolve().parent
JUDGMENTS_PATH = BENCH_DIR / "relevance_judgments.json"
BASELINE_PATH = BENCH_DIR / "relevance_baseline.json"

K = 10
TOLERANCE = 0.02
BACKENDS = ("sqlite", "postgresql")
SEARCH_PATH = f"{API_PREFIX}/search"


# --------------------------------------------------------------------------- judgments


@dataclass(frozen=True)
class Judgment:
    query: str
    kind: str
    intent: str
    grades: Mapping[str, int]  # SKU -> 1 (related) or 2 (exactly what was asked)


@dataclass(frozen=True)
class JudgmentSet:
    catalog_seed: int
    catalog_products: int
    judgments: tuple[Judgment, ...]


def load_judgments(path: Path = JUDGMENTS_PATH) -> JudgmentSet:
    data = json.loads(path.read_text())
    judgments: list[Judgment] = []
    seen: set[str] = set()
    for item in data["queries"]:
        query = str(item["query"])
        grades = {str(sku): int(grade) for sku, grade in item["relevant"].items()}
        if query in seen:
            raise ValueError(f"{path}: query {query!r} is judged twice")
        if not grades or max(grades.values()) != 2 or not set(grades.values()) <= {1, 2}:
            raise ValueError(f"{path}: {query!r} needs grades 1/2 and at least one 2")
        seen.add(query)
        judgments.append(Judgment(query, str(item["kind"]), str(item.get("intent", "")), grades))
    catalog = data["catalog"]
    return JudgmentSet(int(catalog["seed"]), int(catalog["products"]), tuple(judgments))


def load_baseline(path: Path = BASELINE_PATH) -> dict[str, float]:
    """Backend name -> the NDCG@10 it must not fall below."""
    data = json.loads(path.read_text())
    return {str(name): float(value) for name, value in data["ndcg_at_10"].items()}


def baseline_value(measured: float, tolerance: float = TOLERANCE) -> float:
    """Rounded down to 2 decimals, minus the tolerance."""
    return round(math.floor(measured * 100 + 1e-9) / 100 - tolerance, 2)


# --------------------------------------------------------------------------- metrics


def dcg(grades: Sequence[int]) -> float:
    return sum((2.0**grade - 1) / math.log2(rank + 2) for rank, grade in enumerate(grades))


def ndcg_at_k(returned: Sequence[str], judged: Mapping[str, int], k: int = K) -> float:
    ideal = dcg(sorted(judged.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([judged.get(sku, 0) for sku in returned[:k]]) / ideal


def recall_at_k(returned: Sequence[str], judged: Mapping[str, int], k: int = K) -> float:
    if not judged:
        return 0.0
    return sum(1 for sku in returned[:k] if sku in judged) / len(judged)


def capped_recall_at_k(returned: Sequence[str], judged: Mapping[str, int], k: int = K) -> float:
    if not judged:
        return 0.0
    return sum(1 for sku in returned[:k] if sku in judged) / min(k, len(judged))


@dataclass
class QueryResult:
    judgment: Judgment
    returned: list[str]  # SKUs, in rank order
    names: list[str]
    total: int
    did_you_mean: str | None
    ndcg: float
    recall: float
    capped_recall: float


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else math.nan


@dataclass
class Report:
    backend: str
    results: list[QueryResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ndcg(self) -> float:
        return _mean(r.ndcg for r in self.results)

    @property
    def recall(self) -> float:
        return _mean(r.recall for r in self.results)

    @property
    def capped_recall(self) -> float:
        return _mean(r.capped_recall for r in self.results)

    @property
    def zero_result_rate(self) -> float:
        return _mean(1.0 if r.total == 0 else 0.0 for r in self.results)

    def by_kind(self) -> dict[str, float]:
        groups: dict[str, list[float]] = defaultdict(list)
        for r in self.results:
            groups[r.judgment.kind].append(r.ndcg)
        return {kind: _mean(values) for kind, values in groups.items()}

    def worst(self, n: int = 10) -> list[QueryResult]:
        return sorted(self.results, key=lambda r: (r.ndcg, r.judgment.query))[:n]

    def summary(self) -> dict[str, Any]:
        return {
            "queries": len(self.results),
            "ndcg_at_10": round(self.ndcg, 4),
            "recall_at_10": round(self.recall, 4),
            "capped_recall_at_10": round(self.capped_recall, 4),
            "zero_result_rate": round(self.zero_result_rate, 4),
            "ndcg_by_kind": {k: round(v, 4) for k, v in sorted(self.by_kind().items())},
            "seconds": round(self.seconds, 1),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "per_query": [
                {
                    "query": r.judgment.query,
                    "kind": r.judgment.kind,
                    "ndcg_at_10": round(r.ndcg, 4),
                    "recall_at_10": round(r.recall, 4),
                    "total": r.total,
                    "did_you_mean": r.did_you_mean,
                    "top": r.returned,
                }
                for r in self.results
            ],
        }


async def evaluate(
    client: httpx.AsyncClient, judgments: Sequence[Judgment], *, backend: str, k: int = K
) -> Report:
    """Run every judged query through `GET /api/v1/search` and score the first page.

    The harness's core, shared by the command line and tests/test_relevance.py."""
    report = Report(backend)
    started = time.perf_counter()
    for judgment in judgments:
        response = await client.get(SEARCH_PATH, params={"q": judgment.query, "page_size": k})
        if response.status_code != 200:
            raise RuntimeError(
                f"{backend}: search {judgment.query!r} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        body = response.json()
        items = body["items"][:k]
        returned = [str(item["sku"]) for item in items]
        report.results.append(
            QueryResult(
                judgment=judgment,
                returned=returned,
                names=[str(item["name"]) for item in items],
                total=int(body["total"]),
                did_you_mean=body.get("did_you_mean"),
                ndcg=ndcg_at_k(returned, judgment.grades, k),
                recall=recall_at_k(returned, judgment.grades, k),
                capped_recall=capped_recall_at_k(returned, judgment.grades, k),
            )
        )
    report.seconds = time.perf_counter() - started
    return report


async def seed_demo(engine: AsyncEngine, judgments: JudgmentSet) -> None:
    """Load the catalog the judgments were written for."""
    catalog = generate_catalog(seed=judgments.catalog_seed, products=judgments.catalog_products)
    async with engine.begin() as conn:
        await seed_into(conn, catalog)


# --------------------------------------------------------------------------- rendering


def render_summary(reports: Sequence[Report], baseline: Mapping[str, float] | None) -> str:
    header = (
        f"{'backend':<12}{'queries':>8}{'NDCG@10':>9}{'recall@10':>11}{'capped':>8}"
        f"{'zero%':>7}{'baseline':>10}{'seconds':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in reports:
        floor = (baseline or {}).get(r.backend)
        lines.append(
            f"{r.backend:<12}{len(r.results):>8}{r.ndcg:>9.3f}{r.recall:>11.3f}"
            f"{r.capped_recall:>8.3f}{r.zero_result_rate * 100:>6.1f}%"
            f"{'' if floor is None else f'{floor:.2f}':>10}{r.seconds:>9.1f}"
        )
    kinds = sorted({kind for r in reports for kind in r.by_kind()})
    lines.append("")
    lines.append("NDCG@10 by query kind:")
    lines.append(f"  {'kind':<18}" + "".join(f"{r.backend:>12}" for r in reports))
    for kind in kinds:
        count = sum(1 for q in reports[0].results if q.judgment.kind == kind)
        cells = "".join(f"{r.by_kind().get(kind, math.nan):>12.3f}" for r in reports)
        lines.append(f"  {kind + f' ({count})':<18}{cells}")
    return "\n".join(lines)


def _mark(result: QueryResult, rank: int) -> str:
    grade = result.judgment.grades.get(result.returned[rank], 0)
    return f"[{grade}] {result.names[rank]}"


def render_worst(report: Report, n: int = 10) -> str:
    lines = [f"{n} worst queries on {report.backend} (NDCG@10, recall@10, total results):"]
    for r in report.worst(n):
        correction = f", did you mean {r.did_you_mean!r}" if r.did_you_mean else ""
        lines.append(
            f"  {r.ndcg:5.3f} {r.recall:5.2f} {r.total:>5}  {r.judgment.query!r} "
            f"({r.judgment.kind}{correction})"
        )
        for rank in range(min(3, len(r.returned))):
            lines.append(f"        {rank + 1}. {_mark(r, rank)}")
    return "\n".join(lines)


def render_per_query(reports: Sequence[Report]) -> str:
    lines = [f"  {'query':<26}{'kind':<12}" + "".join(f"{r.backend:>12}" for r in reports)]
    for i, result in enumerate(reports[0].results):
        cells = "".join(f"{r.results[i].ndcg:>12.3f}" for r in reports)
        lines.append(f"  {result.judgment.query:<26}{result.judgment.kind:<12}{cells}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- backends


def harness_settings(database_url: str, media_root: Path) -> Settings:
    return unlimited_settings(
        environment=Environment.test,
        secret_key=secrets.token_urlsafe(48),
        database_url=database_url,
        redis_url=None,
        media_root=media_root,
        cache_enabled=False,
    )


@contextlib.asynccontextmanager
async def _database(backend: str, workdir: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'catalog.db'}"
    elif backend == "postgresql":
        async with throwaway_database("catalog_relevance") as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


async def run_backend(backend: str, judgments: JudgmentSet) -> Report:
    with tempfile.TemporaryDirectory(prefix=f"relevance-{backend}-") as tmp:
        workdir = Path(tmp)
        async with _database(backend, workdir) as url:
            await asyncio.to_thread(run_migrations, url)
            app: FastAPI = create_app(harness_settings(url, workdir / "media"))
            async with app.router.lifespan_context(app):
                try:
                    await seed_demo(app.state.engine, judgments)
                    actual = app.state.search_backend.name
                    if actual != backend:
                        raise RuntimeError(f"expected the {backend} backend, got {actual}")
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://relevance", timeout=60
                    ) as client:
                        return await evaluate(client, judgments.judgments, backend=backend)
                finally:
                    await quiesce(app)


async def run(args: argparse.Namespace) -> int:
    judgments = load_judgments()
    baseline: dict[str, float] | None = None
    if BASELINE_PATH.exists():
        baseline = load_baseline()
    kinds = sorted({j.kind for j in judgments.judgments})
    print(
        f"{len(judgments.judgments)} judged queries ({', '.join(kinds)}), "
        f"{sum(len(j.grades) for j in judgments.judgments)} judged products, demo catalog "
        f"seed={judgments.catalog_seed} products={judgments.catalog_products}",
        flush=True,
    )
    reports: list[Report] = []
    for backend in args.backend or BACKENDS:
        print(f"{backend}: migrating, seeding, searching ...", flush=True)
        reports.append(await run_backend(backend, judgments))
    print()
    print(render_summary(reports, baseline))
    if args.verbose:
        print("\nNDCG@10 per query:")
        print(render_per_query(reports))
    for report in reports:
        print()
        print(render_worst(report))
    if args.json:
        await asyncio.to_thread(
            write_json, Path(args.json), {r.backend: r.to_json() for r in reports}
        )
        print(f"\nfigures written to {args.json}")
    if args.write_baseline:
        values = dict(baseline or {})
        measured: dict[str, float] = {}
        for report in reports:
            values[report.backend] = baseline_value(report.ndcg)
            measured[report.backend] = round(report.ndcg, 4)
        previous: dict[str, Any] = (
            json.loads(BASELINE_PATH.read_text()) if BASELINE_PATH.exists() else {}
        )
        document = {
            "description": (
                "Mean NDCG@10 per search backend over bench/relevance_judgments.json that "
                "tests/test_relevance.py enforces: the measured figure rounded down to 2 "
                f"decimals, minus {TOLERANCE}. Refresh with "
                "`uv run python -m bench.relevance --write-baseline` after a deliberate change."
            ),
            "ndcg_at_10": dict(sorted(values.items())),
            "measured": dict(sorted({**previous.get("measured", {}), **measured}.items())),
        }
        await asyncio.to_thread(write_json, BASELINE_PATH, document)
        print(f"\nbaseline written to {BASELINE_PATH}: {document['ndcg_at_10']}")
    if args.min_ndcg is not None:
        failing = [r for r in reports if r.ndcg < args.min_ndcg]
        for r in failing:
            print(f"FAIL: {r.backend} NDCG@10 {r.ndcg:.3f} < {args.min_ndcg}", file=sys.stderr)
        if failing:
            return 1
    return 0


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.relevance",
        description="Search relevance (NDCG@10, recall@10) against hand-written judgments.",
    )
    parser.add_argument(
        "--backend", action="append", choices=BACKENDS, help="only this backend (repeatable)"
    )
    parser.add_argument(
        "--min-ndcg", type=float, metavar="X", help="exit 1 if a backend's NDCG@10 is below X"
    )
    parser.add_argument(
        "--write-baseline", action="store_true", help=f"store the figures in {BASELINE_PATH.name}"
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--verbose", action="store_true", help="NDCG@10 of every query")
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging("WARNING", json=True)
    try:
        return asyncio.run(cancel_on_sigterm(run(args)))
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
