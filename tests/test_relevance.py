"""Search relevance must not regress: the judged demo-catalog queries of bench/relevance.py,
scored with NDCG@10 on the current profile's backend, against bench/relevance_baseline.json."""

from __future__ import annotations

import httpx
from bench.relevance import (
    K,
    evaluate,
    load_baseline,
    load_judgments,
    render_worst,
    seed_demo,
)
from fastapi import FastAPI


async def test_ndcg_does_not_fall_below_the_baseline(app: FastAPI) -> None:
    judgments = load_judgments()
    backend: str = app.state.search_backend.name
    baseline = load_baseline()
    assert backend in baseline, f"no relevance baseline for the {backend} backend"

    await seed_demo(app.state.engine, judgments)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            report = await evaluate(client, judgments.judgments, backend=backend)
    finally:
        # Nothing left for the lifespan to flush: a long flush at shutdown gives the Redis
        # invalidation listener time to reconnect after the client is closed, and cancelling it
        # then can hang (see bench.search.quiesce).
        await app.state.recorder.flush()

    assert len(report.results) == len(judgments.judgments)
    assert report.ndcg >= baseline[backend], (
        f"{backend}: NDCG@{K} {report.ndcg:.3f} fell below the baseline {baseline[backend]:.2f} "
        "(bench/relevance_baseline.json); if the change is deliberate, refresh it with "
        "`uv run python -m bench.relevance --write-baseline`.\n" + render_worst(report)
    )
