"""The baseline of the load benchmark: a bare FastAPI app with one route returning fixed bytes.

    uv run python -m bench.bare_app [--host 127.0.0.1] [--port 8001] [--workers 2]

Served by the same server with the same options as `catalog serve` (granian with uvloop by
default, or uvicorn with uvloop + httptools; worker processes), so `bench/load.py` can report
every scenario as a share of what the same stack does with no application code at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fastapi import FastAPI, Response

BODY = b'{"ok":true}'
PATH = "/bare"

app = FastAPI(title="bare", docs_url=None, redoc_url=None, openapi_url=None)


@app.get(PATH)
async def bare() -> Response:
    return Response(BODY, media_type="application/json")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=("granian", "uvicorn"), default="granian")
    args = parser.parse_args(argv)
    if args.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        Granian(
            "bench.bare_app:app",
            address=args.host,
            port=args.port,
            interface=Interfaces.ASGI,
            workers=args.workers,
            loop=Loops.uvloop,
            log_access=False,
            log_level=LogLevels.warning,
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        "bench.bare_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        proxy_headers=False,
        server_header=False,
        log_config=None,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
