"""Throughput and latency of the real server under concurrent load, measured with wrk.

    uv run python -m bench.load [--products N] [--duration S] [--explain] [--profile DIR]
    make bench-load

1. Creates a throw-away PostgreSQL database `catalog_load_<random>` (dropped at the end, also on
   errors, Ctrl-C and SIGTERM), runs the migrations, seeds `generate_catalog(seed=42,
   products=N)` with `seed_into` and runs `VACUUM (ANALYZE)`.
2. Starts the real server, `uv run catalog serve --workers 2` (granian by default; `--server
   uvicorn` for uvicorn with uvloop + httptools), in
   the production profile: PostgreSQL, Redis (keys under a unique prefix, deleted at the end),
   every middleware on, logging on at WARNING, rate limits raised out of the way. Next to it, a
   bare FastAPI app (`bench/bare_app.py`) under the same server and options: every scenario is
   reported as a share of the bare app's throughput measured in the same run.
3. Runs each scenario with `wrk -t2 -c64 -d<duration>s` and a Lua script that sends paths
   round-robin from a list and reports requests, errors (HTTP status >= 400 and socket errors)
   and p50/p95/p99 latency. Scenarios: bare endpoint; cached product GET; 304 revalidation;
   uncached product GET (server restarted with `CATALOG_CACHE_ENABLED=false`); product list
   pages; search with a facet; suggestions (the last three with the cache off and on); mixed
   traffic (70% product reads, 20% search, 5% suggest, 5% writes as a seller) for
   `--mixed-duration` seconds (30, at most 60), with p50/p95/p99 per kind of request.
4. Prints the table and writes it, with the command, the machine and the targets, to the
   "Load benchmark" section of docs/performance.md, and `EXPLAIN (ANALYZE, BUFFERS)` of the key
   statements (product by id, list pages, search with facets) to its "Query plans" section.

Exit status: 0 when no scenario had an error, 1 otherwise, 2 when the run could not complete.
Targets are reported, never enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench.common import REDIS_URL, delete_redis_keys, pg_admin, throwaway_database
from catalog.app import API_PREFIX
from catalog.auth.principal import ANONYMOUS
from catalog.cli import run_migrations
from catalog.config import Settings
from catalog.db import SEARCH_SERVER_SETTINGS, create_engine, create_sessionmaker
from catalog.products.reads import PostgresProductReads
from catalog.products.service import ProductFilters, ProductSort
from catalog.search import service as search_service
from catalog.search.backend import PostgresSearchBackend, SearchFilters
from catalog.search.query import STOPWORDS, tokenize
from catalog.seed import DemoCatalog, generate_catalog, seed_into

from . import bare_app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = PROJECT_ROOT / "docs" / "performance.md"

HOST = "127.0.0.1"  # load is only ever sent to this machine

CATALOG_SEED = 42
QUERY_SEED = 7
WORKERS = 2
# The HTTP server of both the catalog and the bare app (`--server`): granian or uvicorn.
SERVER = ["granian"]
SERVER_DETAIL = {"granian": "granian, uvloop", "uvicorn": "uvicorn, uvloop, httptools"}
WRK_THREADS = 2
WRK_CONNECTIONS = 64
WRK_TIMEOUT = "10s"  # slower answers are latencies, not socket errors
MAX_DURATION_S = 30
DEFAULT_DURATION_S = 15
DEFAULT_WARMUP_S = 3
DEFAULT_WAIT_QUIET_S = 120.0  # a shared machine: let other work finish before measuring
CACHED_IDS = 1_000
UNCACHED_IDS = 10_000
SEARCH_QUERIES = 200
SUGGEST_PREFIXES = 200
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
TIME_LIMIT_S = 1800.0
CLEANUP_RESERVE_S = 30.0
WARM_CONCURRENCY = 8
HIGH_LIMIT = "100000000/minute"
# Mixed traffic (issue: 70% product reads, 20% search, 5% suggest, 5% writes as a seller).
MIXED_KINDS = ("read", "search", "suggest", "write")
MIXED_SHARES = {"read": 70, "search": 20, "suggest": 5, "write": 5}
MIXED_SEQUENCE = 2_000  # requests in the shuffled sequence wrk sends round-robin
MIXED_SELLER_PRODUCTS = 40  # products of the writing seller; a tenth of the reads are of them
DEFAULT_MIXED_DURATION_S = 30
MAX_MIXED_DURATION_S = 60
SELLER_EMAIL = "bench-load-seller@example.com"

PRODUCTS_PATH = f"{API_PREFIX}/products"
SEARCH_PATH = f"{API_PREFIX}/search"
SUGGEST_PATH = f"{API_PREFIX}/search/suggest"
READY_PATH = "/health/ready"

SECTION_LOAD = "## Load benchmark"
SECTION_PLANS = "## Query plans"


class Deadline(Exception):
    """The time budget ran out."""


class BenchError(Exception):
    """The benchmark could not be run (a server did not start, wrk failed, ...)."""


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Target:
    min_ratio: float | None = None  # share of the bare endpoint's rps
    max_p99_ms: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f">= {self.min_ratio:.0%} of bare")
        if self.max_p99_ms is not None:
            parts.append(f"p99 <= {self.max_p99_ms:.0f} ms")
        parts.append("0 errors")
        return ", ".join(parts)


@dataclass
class Scenario:
    key: str
    title: str
    server: str  # bare | cached | uncached
    paths: list[str]
    etags: list[str] | None = None  # If-None-Match per path
    warm_each: bool = False  # one request per path first (fills the response cache)
    target: Target = field(default_factory=Target)
    # Mixed traffic: the requests (filled in once the server runs: the writes need a seller)
    # and the bearer token of the writes. `paths` then holds the read-only part, for warming.
    mixed: list[MixedRequest] | None = None
    token: str = ""

    @property
    def detail(self) -> str:
        return f"{len(self.paths):,} paths"


@dataclass(frozen=True)
class MixedRequest:
    kind: str  # one of MIXED_KINDS
    method: str
    path: str
    body: str = ""


@dataclass
class KindStats:
    """Latency and errors of one kind of request in the mixed scenario."""

    kind: str
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # status >= 400
    codes: dict[str, int]


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    status_errors: int  # responses with status >= 400 (the Lua response() hook)
    socket_errors: dict[str, int]
    statuses: dict[str, int]  # 2xx / 3xx / 4xx / 5xx
    bytes_read: int
    codes: dict[str, int] = field(default_factory=dict)  # per HTTP status
    kinds: list[KindStats] = field(default_factory=list)  # the mixed scenario's, per kind
    unmatched: int = 0  # mixed: responses whose X-Request-ID matched no request sent

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.status_errors + sum(self.socket_errors.values()) + self.unmatched


@dataclass
class Row:
    scenario: Scenario
    result: WrkResult
    warm_errors: int = 0
    ratio: float = math.nan
    cpu: CpuUsage | None = None
    connections: list[int] = field(default_factory=list)  # per worker, mid-measurement
    server_cpu_ms: float = math.nan  # server CPU time per request
    pg_ms: float = math.nan  # statement execution time in PostgreSQL per request
    pg_sessions: int | None = None  # connections PostgreSQL accepted during the measurement
    pg_commits: int | None = None  # transactions committed during the measurement

    @property
    def errors(self) -> int:
        return self.result.errors + self.warm_errors

    def verdict(self) -> str:
        target = self.scenario.target
        if target.min_ratio is None and target.max_p99_ms is None:
            return "-" if self.scenario.server == "bare" else ("ok" if not self.errors else "ERR")
        ok = self.errors == 0
        if target.min_ratio is not None:
            ok = ok and self.ratio >= target.min_ratio
        if target.max_p99_ms is not None:
            ok = ok and self.result.p99_ms <= target.max_p99_ms
        return "ok" if ok else "MISSED"


# --------------------------------------------------------------------------- wrk

LUA_TEMPLATE = r"""-- generated by bench/load.py: paths round-robin; errors and latency as JSON
local threads = {}
local nthreads = __NTHREADS__
local paths_file = __PATHS_FILE__

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  s2, s3, s4, s5 = 0, 0, 0, 0
  codes = {}
  reqs = {}
  for line in io.lines(paths_file) do
    local path, etag = line:match("^([^\t]+)\t(.*)$")
    if path == nil then path, etag = line, "" end
    local headers = {}
    if etag ~= "" then headers["If-None-Match"] = etag end
    reqs[#reqs + 1] = wrk.format("GET", path, headers)
  end
  n = #reqs
  idx = math.floor(tid * n / nthreads)
end

function request()
  idx = idx % n + 1
  return reqs[idx]
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if status >= 500 then s5 = s5 + 1
  elseif status >= 400 then s4 = s4 + 1
  elseif status >= 300 then s3 = s3 + 1
  else s2 = s2 + 1 end
end

function done(summary, latency, requests)
  local c2, c3, c4, c5 = 0, 0, 0, 0
  local all = {}
  for _, t in ipairs(threads) do
    c2 = c2 + t:get("s2"); c3 = c3 + t:get("s3")
    c4 = c4 + t:get("s4"); c5 = c5 + t:get("s5")
    for code, n in pairs(t:get("codes")) do all[code] = (all[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(all) do parts[#parts + 1] = string.format('"%d":%d', code, n) end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"status":%d,"p50_us":%.1f,"p95_us":%.1f,"p99_us":%.1f,' ..
    '"max_us":%.1f,"s2":%d,"s3":%d,"s4":%d,"s5":%d,"codes":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, c2, c3, c4, c5, table.concat(parts, ",")))
end
"""

MIXED_LUA_TEMPLATE = r"""-- generated by bench/load.py: a mixed sequence of requests round-robin;
-- latency per kind of request, paired with its response by X-Request-ID (echoed)
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}
local nthreads = __NTHREADS__
local requests_file = __REQUESTS_FILE__
local auth = __AUTH__
local kinds = {"read", "search", "suggest", "write"}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  rkind, rmethod, rpath, rbody = {}, {}, {}, {}
  for line in io.lines(requests_file) do
    local kind, method, path, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    rkind[#rkind + 1] = kind
    rmethod[#rmethod + 1] = method
    rpath[#rpath + 1] = path
    rbody[#rbody + 1] = body
  end
  n = #rkind
  idx = math.floor(tid * n / nthreads)
  seq = 0
  pending_kind, pending_start = {}, {}
  unmatched = 0
  codes = {}
  for _, k in ipairs(kinds) do _G["lat_" .. k] = {}; _G["err_" .. k] = 0 end
end

function request()
  idx = idx % n + 1
  seq = seq + 1
  local id = "bench" .. tid .. "x" .. seq
  local headers = {["X-Request-ID"] = id}
  local body = nil
  if rmethod[idx] ~= "GET" then
    headers["Authorization"] = auth
    headers["Content-Type"] = "application/json"
    body = rbody[idx]
  end
  pending_kind[id] = rkind[idx]
  pending_start[id] = now_us()
  return wrk.format(rmethod[idx], rpath[idx], headers, body)
end

function response(status, headers, body)
  local id = headers["x-request-id"] or headers["X-Request-ID"]
  local kind = id and pending_kind[id]
  if kind == nil then
    unmatched = unmatched + 1
    return
  end
  local lat = _G["lat_" .. kind]
  lat[#lat + 1] = now_us() - pending_start[id]
  pending_kind[id], pending_start[id] = nil, nil
  if status >= 400 then _G["err_" .. kind] = _G["err_" .. kind] + 1 end
  local key = kind .. ":" .. status
  codes[key] = (codes[key] or 0) + 1
end

local function pct(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.ceil(p / 100 * #sorted)
  if i < 1 then i = 1 end
  return sorted[i]
end

function done(summary, latency, requests)
  local parts, all_codes, statuses = {}, {}, {0, 0, 0, 0, 0}
  local lost = 0
  for _, k in ipairs(kinds) do
    local values, errs = {}, 0
    for _, t in ipairs(threads) do
      for _, v in ipairs(t:get("lat_" .. k)) do values[#values + 1] = v end
      errs = errs + t:get("err_" .. k)
    end
    table.sort(values)
    parts[#parts + 1] = string.format(
      '"%s":{"n":%d,"p50_us":%.1f,"p95_us":%.1f,"p99_us":%.1f,"max_us":%.1f,"errors":%d}',
      k, #values, pct(values, 50), pct(values, 95), pct(values, 99),
      values[#values] or 0, errs)
  end
  for _, t in ipairs(threads) do
    lost = lost + t:get("unmatched")
    for key, c in pairs(t:get("codes")) do all_codes[key] = (all_codes[key] or 0) + c end
  end
  local code_parts, per_status = {}, {}
  for key, c in pairs(all_codes) do
    code_parts[#code_parts + 1] = string.format('"%s":%d', key, c)
    local status = tonumber(key:match(":(%d+)$"))
    per_status[status] = (per_status[status] or 0) + c
    local class = math.floor(status / 100)
    if class >= 2 and class <= 5 then statuses[class] = statuses[class] + c end
  end
  local status_parts = {}
  for status, c in pairs(per_status) do
    status_parts[#status_parts + 1] = string.format('"%d":%d', status, c)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"status":%d,"p50_us":%.1f,"p95_us":%.1f,"p99_us":%.1f,' ..
    '"max_us":%.1f,"s2":%d,"s3":%d,"s4":%d,"s5":%d,"codes":{%s}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.timeout, e.status, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, statuses[2], statuses[3], statuses[4], statuses[5],
    table.concat(status_parts, ",")))
  io.write(string.format('MIXJSON {"kinds":{%s},"codes":{%s},"unmatched":%d}\n',
    table.concat(parts, ","), table.concat(code_parts, ","), lost))
end
"""


def lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def write_wrk_script(directory: Path, scenario: Scenario) -> Path:
    lines = []
    for i, path in enumerate(scenario.paths):
        if "\t" in path or "\n" in path:
            raise BenchError(f"unexpected character in path {path!r}")
        etag = scenario.etags[i] if scenario.etags is not None else ""
        lines.append(f"{path}\t{etag}")
    paths_file = directory / f"{scenario.key}.paths"
    paths_file.write_text("\n".join(lines) + "\n")
    script = directory / f"{scenario.key}.lua"
    script.write_text(
        LUA_TEMPLATE.replace("__NTHREADS__", str(WRK_THREADS)).replace(
            "__PATHS_FILE__", lua_string(str(paths_file))
        )
    )
    return script


def write_mixed_script(directory: Path, scenario: Scenario) -> Path:
    assert scenario.mixed is not None
    lines = []
    for r in scenario.mixed:
        if any(c in f"{r.path}{r.body}" for c in "\t\n"):
            raise BenchError(f"unexpected character in request {r!r}")
        lines.append(f"{r.kind}\t{r.method}\t{r.path}\t{r.body}")
    requests_file = directory / f"{scenario.key}.requests"
    requests_file.write_text("\n".join(lines) + "\n")
    script = directory / f"{scenario.key}.lua"
    script.write_text(
        MIXED_LUA_TEMPLATE.replace("__NTHREADS__", str(WRK_THREADS))
        .replace("__REQUESTS_FILE__", lua_string(str(requests_file)))
        .replace("__AUTH__", lua_string(f"Bearer {scenario.token}"))
    )
    return script


def wrk_command(script: Path, port: int, duration: int) -> list[str]:
    return [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{duration}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(script),
        f"http://{HOST}:{port}",
    ]


async def run_wrk(script: Path, port: int, duration: int) -> WrkResult:
    proc = await asyncio.create_subprocess_exec(
        *wrk_command(script, port, duration),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=duration + 30)
    except BaseException:  # timeout, Ctrl-C: never leave wrk running
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), timeout=5)
        raise
    out = stdout.decode(errors="replace")
    match = re.search(r"^WRKJSON (\{.*\})$", out, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise BenchError(
            f"wrk failed (exit {proc.returncode}): {stderr.decode(errors='replace')[-800:]}"
            f"\n{out[-800:]}"
        )
    data = json.loads(match.group(1))
    kinds: list[KindStats] = []
    unmatched = 0
    mixed = re.search(r"^MIXJSON (\{.*\})$", out, re.MULTILINE)
    if mixed is not None:
        mixed_data = json.loads(mixed.group(1))
        unmatched = int(mixed_data["unmatched"])
        for kind in MIXED_KINDS:
            k = mixed_data["kinds"][kind]
            kinds.append(
                KindStats(
                    kind=kind,
                    requests=int(k["n"]),
                    p50_ms=float(k["p50_us"]) / 1000,
                    p95_ms=float(k["p95_us"]) / 1000,
                    p99_ms=float(k["p99_us"]) / 1000,
                    max_ms=float(k["max_us"]) / 1000,
                    errors=int(k["errors"]),
                    codes={
                        key.split(":", 1)[1]: int(v)
                        for key, v in sorted(mixed_data["codes"].items())
                        if key.split(":", 1)[0] == kind
                    },
                )
            )
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=int(data["duration_us"]) / 1e6,
        p50_ms=float(data["p50_us"]) / 1000,
        p95_ms=float(data["p95_us"]) / 1000,
        p99_ms=float(data["p99_us"]) / 1000,
        max_ms=float(data["max_us"]) / 1000,
        status_errors=int(data["s4"]) + int(data["s5"]),
        socket_errors={k: int(data[k]) for k in ("connect", "read", "write", "timeout")},
        statuses={k: int(data[f"s{k[0]}"]) for k in ("2xx", "3xx", "4xx", "5xx")},
        bytes_read=int(data["bytes"]),
        codes={str(k): int(v) for k, v in sorted(data.get("codes", {}).items())},
        kinds=kinds,
        unmatched=unmatched,
    )


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def descendants(pid: int) -> list[int]:
    tree = _children()
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


_DB_COMMANDS = ("postgres", "redis-server")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    busy: int  # jiffies of all CPUs, not idle
    mine: int  # this process and its descendants (servers, wrk), exited children included
    db: dict[int, int]  # PostgreSQL and Redis processes (backends that exit are missed)


@dataclass(frozen=True)
class CpuUsage:
    """Shares of the machine's CPU capacity over a measurement."""

    busy: float
    mine: float
    db: float

    @property
    def other(self) -> float:
        return max(0.0, self.busy - self.mine - self.db)

    def describe(self) -> str:
        return (
            f"CPU {self.busy:.0%} busy: benchmark {self.mine:.0%}, PostgreSQL+Redis "
            f"{self.db:.0%}, other processes {self.other:.0%}"
        )


def _proc_times(pid: int) -> tuple[str, int, int] | None:
    """(command, own CPU jiffies, reaped children's jiffies)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    fields = stat.rsplit(")", 1)[-1].split()
    return comm, int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def cpu_snapshot() -> CpuSnapshot:
    with Path("/proc/stat").open() as f:
        values = [int(v) for v in f.readline().split()[1:]]
    busy = sum(values[:8]) - values[3] - values[4]  # minus idle and iowait
    mine_pids = {os.getpid(), *descendants(os.getpid())}
    mine = 0
    db: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        times = _proc_times(pid)
        if times is None:
            continue
        comm, own, children = times
        if pid in mine_pids:
            mine += own + children
        elif comm.startswith(_DB_COMMANDS):
            db[pid] = own
    return CpuSnapshot(time.monotonic(), busy, mine, db)


def cpu_usage(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    capacity = max(1e-9, (after.at - before.at) * _CLOCK_TICKS * (os.cpu_count() or 1))
    db = sum(v - before.db.get(pid, 0) for pid, v in after.db.items())
    return CpuUsage(
        busy=(after.busy - before.busy) / capacity,
        mine=(after.mine - before.mine) / capacity,
        db=db / capacity,
    )


async def wait_until_quiet(limit_s: float, threshold: float = 0.15) -> CpuUsage:
    """Wait (at most `limit_s`) until other processes use less than `threshold` of the CPU
    over a 2-second window; returns the last window's usage."""
    deadline = time.monotonic() + limit_s
    while True:
        before = await asyncio.to_thread(cpu_snapshot)
        await asyncio.sleep(2.0)
        usage = cpu_usage(before, await asyncio.to_thread(cpu_snapshot))
        if usage.other < threshold or time.monotonic() >= deadline:
            return usage
        print(f"  waiting for a quieter machine ({usage.describe()})", flush=True)


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections to local `port` (IPv4)."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def connections_per_process(pids: Sequence[int], port: int) -> list[int]:
    """How many of the established connections to `port` each process holds."""
    inodes = _established_inodes(port)
    counts = []
    for pid in pids:
        n = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        n += 1
        counts.append(n)
    return counts


class Server:
    """A server subprocess in a process group of its own, stopped by SIGTERM to that group
    (then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self, ready_path: str) -> None:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(ready_path)
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.25)
        tail = self.log.read_text(errors="replace")[-2000:]
        await self.stop()
        raise BenchError(f"{self.name} server did not become ready on {self.base_url}:\n{tail}")

    def worker_pids(self) -> list[int]:
        """The worker processes: children of the server's main process (`uv run` starts that
        one), whether spawned (uvicorn) or forked (granian); multiprocessing's resource
        tracker is not a worker."""
        if self.proc is None:
            return []
        children = _children()
        return [
            worker
            for main in children.get(self.proc.pid, [])
            for worker in children.get(main, [])
            if "resource_tracker" not in _cmdline(worker)
        ]

    def cpu_ticks(self) -> int:
        """CPU time (clock ticks) used so far by this server's processes."""
        if self.proc is None:
            return 0
        total = 0
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            times = _proc_times(pid)
            if times is not None:
                total += times[1] + times[2]
        return total

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)  # the group this server was started in

    async def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), timeout=5)
        # Workers that outlived their parent (they share its process group).
        self._signal(signal.SIGKILL)
        self.proc = None


def catalog_env(url: str, redis_prefix: str, *, cache: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env.update(
        {
            "CATALOG_ENVIRONMENT": "production",
            "CATALOG_SECRET_KEY": secrets.token_urlsafe(48),
            "CATALOG_DATABASE_URL": url,
            "CATALOG_REDIS_URL": REDIS_URL,
            "CATALOG_REDIS_PREFIX": redis_prefix,
            "CATALOG_CACHE_ENABLED": "true" if cache else "false",
            "CATALOG_LOG_LEVEL": "WARNING",
            "CATALOG_RATE_LIMIT_ANONYMOUS": HIGH_LIMIT,
            "CATALOG_RATE_LIMIT_AUTHENTICATED": HIGH_LIMIT,
            "CATALOG_RATE_LIMIT_AUTH": HIGH_LIMIT,
            "CATALOG_RATE_LIMIT_LOGIN_PER_ACCOUNT": HIGH_LIMIT,
        }
    )
    return env


def catalog_server(url: str, redis_prefix: str, *, cache: bool, log: Path) -> Server:
    """The real server. Each one gets Redis keys of its own (under the run's prefix), so the
    cache-off server starts from scratch like the cache-on one."""
    port = free_port()
    redis_prefix += "on:" if cache else "off:"
    argv = ["uv", "run", "--frozen", "catalog", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(WORKERS), "--server", SERVER[0]]
    name = "catalog (cache on)" if cache else "catalog (cache off)"
    return Server(name, argv, catalog_env(url, redis_prefix, cache=cache), port, log)


def bare_server(log: Path) -> Server:
    port = free_port()
    argv = ["uv", "run", "--frozen", "python", "-m", "bench.bare_app", "--host", HOST]
    argv += ["--port", str(port), "--workers", str(WORKERS), "--server", SERVER[0]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    return Server("bare", argv, env, port, log)


# --------------------------------------------------------------------------- database


async def pg_counters(database: str) -> tuple[int, int, float]:
    """(sessions, committed transactions, milliseconds spent executing statements) of
    `database` so far: cumulative statistics of this database only, whatever else runs."""
    admin = await pg_admin()
    try:
        row = await admin.fetchrow(
            "SELECT sessions, xact_commit, active_time FROM pg_stat_database WHERE datname = $1",
            database,
        )
    finally:
        await admin.close()
    if row is None:
        return 0, 0, 0.0
    return int(row["sessions"]), int(row["xact_commit"]), float(row["active_time"])


async def migrate_and_seed(url: str, catalog: DemoCatalog) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    await asyncio.to_thread(run_migrations, url)
    timings["migrate"] = time.perf_counter() - started
    engine = create_engine(Settings(database_url=url))
    try:
        started = time.perf_counter()
        async with engine.begin() as conn:
            await seed_into(conn, catalog)
        timings["seed"] = time.perf_counter() - started
        started = time.perf_counter()
        # VACUUM includes ANALYZE; it also sets the visibility map and hint bits, so autovacuum
        # does not start on the freshly loaded tables in the middle of a measurement.
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM (ANALYZE)"))
        timings["analyze"] = time.perf_counter() - started
    finally:
        await engine.dispose()
    return timings


@dataclass
class CatalogIds:
    active: list[str]
    roots: list[str]
    children: list[str]
    leaves: list[str]
    brands: list[str]  # by number of products, most first


async def catalog_ids(url: str) -> CatalogIds:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as conn:
            active = [
                str(r[0])
                for r in await conn.execute(
                    text(
                        "SELECT id FROM product WHERE status = 'active' AND deleted_at IS NULL "
                        "ORDER BY id"
                    )
                )
            ]
            cats = (await conn.execute(text("SELECT id, parent_id, name FROM category"))).all()
            brands = [
                str(r[0])
                for r in await conn.execute(
                    text(
                        "SELECT brand_id FROM product WHERE brand_id IS NOT NULL "
                        "GROUP BY brand_id ORDER BY count(*) DESC, brand_id"
                    )
                )
            ]
    finally:
        await engine.dispose()
    parents = {c[1] for c in cats if c[1] is not None}
    by_name = sorted(cats, key=lambda c: str(c[2]))
    roots = [str(c[0]) for c in by_name if c[1] is None]
    children = [str(c[0]) for c in by_name if c[1] is not None and c[0] in parents]
    leaves = [str(c[0]) for c in by_name if c[0] not in parents]
    return CatalogIds(active, roots, children, leaves, brands)


# --------------------------------------------------------------------------- what to request


def _name_words(name: str) -> list[str]:
    return [w for w in tokenize(name) if w not in STOPWORDS and w.isalpha() and len(w) >= 3]


def _typo(rng: random.Random, word: str) -> str:
    """Two neighbouring letters swapped, not the first one: "chiar"."""
    if len(word) < 4:
        return word + word[-1]
    i = 1 + rng.randrange(len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def search_queries(catalog: DemoCatalog, count: int, seed: int = QUERY_SEED) -> list[str]:
    """`count` distinct, varied queries drawn from the words shoppers would type: words and
    word pairs of product names, brand + product type, category names, typos."""
    rng = random.Random(seed)
    products = [p for p in catalog.products if p.status == "active"] or catalog.products
    brands = {b.slug: b.name for b in catalog.brands}
    categories = [c.name for c in catalog.categories]
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(count * 50):
        if len(out) >= count:
            break
        product = products[rng.randrange(len(products))]
        brand_words = set(_name_words(brands[product.brand_slug]))
        words = [w for w in _name_words(product.name) if w not in brand_words] or ["chair"]
        draw = rng.random()
        if draw < 0.35:
            query = rng.choice(words)
        elif draw < 0.65 and len(words) >= 2:
            start = rng.randrange(len(words) - 1)
            query = " ".join(words[start : start + 2])
        elif draw < 0.8:
            query = f"{brands[product.brand_slug].split()[0].lower()} {words[-1]}"
        elif draw < 0.9:
            query = rng.choice(categories).lower()
        else:
            query = _typo(rng, max(words, key=len))
        if query not in seen:
            seen.add(query)
            out.append(query)
    return out


def suggest_prefixes(catalog: DemoCatalog, count: int, seed: int = QUERY_SEED + 1) -> list[str]:
    """`count` distinct prefixes as typed in a search box: 2 to 6 letters of a word, or a word
    and the start of the next one."""
    rng = random.Random(seed)
    products = [p for p in catalog.products if p.status == "active"] or catalog.products
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(count * 50):
        if len(out) >= count:
            break
        words = _name_words(products[rng.randrange(len(products))].name) or ["chair"]
        if rng.random() < 0.7 or len(words) < 2:
            word = rng.choice(words)
            prefix = word[: rng.randint(2, min(6, len(word)))]
        else:
            start = rng.randrange(len(words) - 1)
            nxt = words[start + 1]
            prefix = f"{words[start]} {nxt[: rng.randint(2, min(4, len(nxt)))]}"
        if prefix not in seen:
            seen.add(prefix)
            out.append(prefix)
    return out


def list_paths(ids: CatalogIds) -> list[str]:
    """First pages of the product list with a few filters and sorts."""
    combos: list[list[tuple[str, str]]] = [
        [],
        [("sort", "price")],
        [("sort", "-price")],
        [("sort", "name")],
        [("category_id", ids.roots[0])],
        [("category_id", ids.roots[-1]), ("sort", "price")],
        [("category_id", ids.children[0])],
        [("category_id", ids.leaves[len(ids.leaves) // 2])],
        [("brand_id", ids.brands[0])],
        [("brand_id", ids.brands[1]), ("sort", "-price")],
        [("in_stock", "true")],
        [("price_min", "50"), ("price_max", "200"), ("sort", "price")],
    ]
    return [
        f"{PRODUCTS_PATH}?" + urllib.parse.urlencode([("limit", "20"), *combo]) for combo in combos
    ]


def build_scenarios(ids: CatalogIds, queries: list[str], prefixes: list[str]) -> list[Scenario]:
    rng = random.Random(QUERY_SEED)
    cached_ids = rng.sample(ids.active, min(CACHED_IDS, len(ids.active)))
    uncached_ids = rng.sample(ids.active, min(UNCACHED_IDS, len(ids.active)))
    product_paths = [f"{PRODUCTS_PATH}/{i}" for i in cached_ids]
    lists = list_paths(ids)
    searches = [
        f"{SEARCH_PATH}?" + urllib.parse.urlencode([("q", q), ("facet", "color")]) for q in queries
    ]
    suggests = [f"{SUGGEST_PATH}?" + urllib.parse.urlencode([("q", p)]) for p in prefixes]
    list_target = Target(min_ratio=0.10)
    return [
        Scenario("a", "bare FastAPI endpoint", "bare", [bare_app.PATH]),
        Scenario(
            "b",
            "GET product, cached",
            "cached",
            product_paths,
            warm_each=True,
            target=Target(min_ratio=0.35, max_p99_ms=25.0),
        ),
        Scenario(
            "c",
            "GET product, 304 (If-None-Match)",
            "cached",
            product_paths,
            warm_each=True,
            target=Target(min_ratio=0.35),
        ),
        Scenario(
            "d",
            "GET product, uncached",
            "uncached",
            [f"{PRODUCTS_PATH}/{i}" for i in uncached_ids],
            target=Target(min_ratio=0.12),
        ),
        Scenario("e-off", "list of 20, cache off", "uncached", lists, target=list_target),
        Scenario(
            "e-on", "list of 20, cache on", "cached", lists, warm_each=True, target=list_target
        ),
        Scenario("f-off", "search + color facet, cache off", "uncached", searches),
        Scenario("f-on", "search + color facet, cache on", "cached", searches, warm_each=True),
        Scenario("g-off", "suggest, cache off", "uncached", suggests),
        Scenario("g-on", "suggest, cache on", "cached", suggests, warm_each=True),
        Scenario(
            "h",
            "mixed: 70% read/20% search/5% suggest/5% write",
            "cached",
            [],
            warm_each=True,
            # The pools of the read-only requests; `prepare_mixed` adds the seller's products
            # and writes and draws the sequence.
            mixed=[
                *(MixedRequest("read", "GET", p) for p in product_paths),
                *(MixedRequest("search", "GET", p) for p in searches),
                *(MixedRequest("suggest", "GET", p) for p in suggests),
            ],
        ),
    ]


async def create_user(env: dict[str, str], email: str, role: str, password: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *["uv", "run", "--frozen", "catalog", "create-user", "--email", email],
        *["--role", role, "--password-stdin"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate((password + "\n").encode()), timeout=120)
    if proc.returncode != 0:
        raise BenchError(f"create-user failed: {out.decode(errors='replace')[-800:]}")


async def prepare_mixed(server: Server, scenario: Scenario) -> None:
    """A seller with products of its own, then the request sequence of the mixed scenario:
    shuffled, in the issue's shares. Writes alternate a price change (PATCH) and a stock
    adjustment (+1 then -1, so stock never runs out); a tenth of the product reads are of the
    seller's products, whose cached answers the writes keep invalidating."""
    assert scenario.mixed is not None
    pools: dict[str, list[MixedRequest]] = {k: [] for k in MIXED_KINDS}
    for request in scenario.mixed:
        pools[request.kind].append(request)
    password = secrets.token_urlsafe(16)
    await create_user(server.env, SELLER_EMAIL, "seller", password)
    seller_reads: list[MixedRequest] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0) as client:
        r = await client.post(
            f"{API_PREFIX}/auth/token", data={"username": SELLER_EMAIL, "password": password}
        )
        if r.status_code != 200:
            raise BenchError(f"seller login: {r.status_code} {r.text[:300]}")
        scenario.token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {scenario.token}"}
        rng = random.Random(QUERY_SEED)
        for i in range(MIXED_SELLER_PRODUCTS):
            r = await client.post(
                PRODUCTS_PATH,
                headers=headers,
                json={
                    "sku": f"BENCH-MIXED-{i:03d}",
                    "name": f"Benchmark seller product {i}",
                    "currency": "EUR",
                    "price": "10.00",
                    "stock": 1000,
                    "status": "active",
                },
            )
            if r.status_code != 201:
                raise BenchError(f"seller product: {r.status_code} {r.text[:300]}")
            product = r.json()
            path = f"{PRODUCTS_PATH}/{product['id']}"
            seller_reads.append(MixedRequest("read", "GET", path))
            stock_path = f"{path}/variants/{product['variants'][0]['id']}/stock-adjustments"
            for n in range(4):
                if n % 2 == 0:
                    price = f"{rng.randint(5, 500)}.{rng.randint(0, 99):02d}"
                    pools["write"].append(
                        MixedRequest("write", "PATCH", path, json.dumps({"price": price}))
                    )
                else:
                    delta = 1 if n == 1 else -1
                    pools["write"].append(
                        MixedRequest("write", "POST", stock_path, json.dumps({"delta": delta}))
                    )
    sequence: list[MixedRequest] = []
    for kind in MIXED_KINDS:
        count = MIXED_SHARES[kind] * MIXED_SEQUENCE // 100
        if kind == "read":
            own = count // 10
            sequence += [seller_reads[i % len(seller_reads)] for i in range(own)]
            sequence += [rng.choice(pools["read"]) for _ in range(count - own)]
        elif kind == "write":
            sequence += [pools["write"][i % len(pools["write"])] for i in range(count)]
        else:
            sequence += [rng.choice(pools[kind]) for _ in range(count)]
    rng.shuffle(sequence)
    scenario.mixed = sequence
    scenario.paths = sorted({r.path for r in sequence if r.method == "GET"})


# --------------------------------------------------------------------------- warming


async def warm_paths(
    base_url: str, paths: Sequence[str], *, want_etags: bool = False
) -> tuple[int, list[str]]:
    """One GET per path (a few at a time); returns (errors, ETags in path order)."""
    semaphore = asyncio.Semaphore(WARM_CONCURRENCY)
    etags = [""] * len(paths)
    errors = 0
    failures: list[str] = []

    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:

        async def one(i: int, path: str) -> None:
            nonlocal errors
            async with semaphore:
                try:
                    response = await client.get(path)
                except httpx.HTTPError as exc:
                    errors += 1
                    failures.append(f"{path}: {type(exc).__name__}")
                    return
            if response.status_code != 200:
                errors += 1
                failures.append(f"{path}: {response.status_code} {response.text[:200]}")
            etags[i] = response.headers.get("etag", "")

        await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))
    for failure in failures[:5]:
        print(f"  warm-up error: {failure}", file=sys.stderr)
    if want_etags and not errors and not all(etags):
        raise BenchError("some responses had no ETag")
    return errors, etags


# --------------------------------------------------------------------------- profiling


WHICH_PY_SPY = "import shutil; print(shutil.which('py-spy'))"


def py_spy_binary() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    try:
        out = subprocess.run(
            ["uv", "run", "--with", "py-spy", "python", "-c", WHICH_PY_SPY],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out if out and out != "None" else None


async def profile_workers(
    py_spy: str, pids: list[int], duration: int, out_dir: Path, key: str
) -> list[asyncio.subprocess.Process]:
    procs = []
    for n, pid in enumerate(pids):
        procs.append(
            await asyncio.create_subprocess_exec(
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(duration),
                "--rate",
                "97",
                "--gil",  # only samples holding the GIL: Python work, not idle threads
                "--format",
                "raw",
                "--output",
                str(out_dir / f"{key}.worker{n}.txt"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


_FRAME_FILE = re.compile(r"\(([^()]+?):\d+\)$")


def _package(frame: str) -> str:
    """The top-level package (or standard-library module) of a py-spy frame such as
    `Session.execute (sqlalchemy/orm/session.py:2351)`."""
    match = _FRAME_FILE.search(frame)
    if match is None:
        return "other"
    path = match.group(1)
    if path.startswith("<"):
        return "other"
    head = path.split("/", 1)[0]
    return head.removesuffix(".py")


def summarize_profile(files: Iterable[Path], top: int = 15) -> str:
    """Share of samples per package (inclusive: the package is anywhere on the stack; self:
    the innermost frame) and the hottest functions, from py-spy raw (collapsed) output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            for package in {_package(f) for f in frames}:
                inclusive[package] += count
            own[_package(frames[-1])] += count
            functions[frames[-1]] += count
    if not total:
        return "  (no samples)"
    lines = [f"  {total} samples; package: inclusive / self"]
    for package, n in inclusive.most_common():
        lines.append(f"    {package:<16}{n / total:>7.1%} {own[package] / total:>7.1%}")
    lines.append("  hottest functions (self):")
    for frame, n in functions.most_common(top):
        lines.append(f"    {n / total:>6.1%}  {frame[:110]}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- query plans


@dataclass
class Plan:
    label: str
    sql: str
    lines: list[str]
    indexes: list[str]


_INDEX_PATTERNS = (
    (re.compile(r"Index Only Scan(?: Backward)? using (\S+) on (\S+)"), "index-only scan"),
    (re.compile(r"Index Scan(?: Backward)? using (\S+) on (\S+)"), "index scan"),
    (re.compile(r"Bitmap Index Scan on (\S+)"), "bitmap index scan"),
    (re.compile(r"Seq Scan on (\S+)"), "seq scan"),
)

_KEY_LINE = re.compile(
    r"^\s*(->|Index Cond|Recheck Cond|Hash Cond|Join Filter|Buffers|Sort Method|"
    r"Rows Removed by Filter|Heap Fetches|Heap Blocks|Planning Time|Execution Time|"
    r"Planning:|CTE |SubPlan|InitPlan|Filter)"
)


def plan_indexes(lines: Sequence[str]) -> list[str]:
    found: list[str] = []
    for line in lines:
        for pattern, kind in _INDEX_PATTERNS:
            match = pattern.search(line)
            if match is None:
                continue
            if kind == "seq scan":
                item = f"seq scan on {match.group(1)}"
            elif kind == "bitmap index scan":
                item = f"{match.group(1)} (bitmap)"
            else:
                item = f"{match.group(1)} ({kind} on {match.group(2)})"
            if item not in found:
                found.append(item)
            break
    return found


def key_lines(lines: Sequence[str], width: int = 170) -> list[str]:
    out = []
    for i, line in enumerate(lines):
        if i == 0 or _KEY_LINE.match(line):
            out.append(line if len(line) <= width else line[: width - 4] + " ...")
    return out


def _classify(statement: str) -> str:
    s = " ".join(statement.lower().split())
    rules = (
        ("from search_synonym", "search: synonym rules"),
        ("from search_term", "search: typo correction candidates (search_term)"),
        ("from search_event", "suggest: past queries"),
        ("lower(brand.name) like", "suggest: brands"),
        ("lower(category.name) like", "suggest: categories"),
        ("select product.id, product.name, product.popularity", "suggest: products"),
        ("search_base", "search: facets, total and page (one scan)"),
        ("browse_page_keys", "browse: the page"),
        ("search_full", "browse: the counts not cached"),
        ("select exists (select", "search: which words match anything (typo check)"),
        ("from brand where brand.id in", "search: brand names of the facets"),
        ("from category where category.id in", "search: category names of the facets"),
        ("from product_variant", "selectinload of the variants"),
    )
    for needle, label in rules:
        if needle in s:
            return label
    if re.match(r"^select \$1(::integer)? as anon_1 from product where", s):
        if re.match(r"^select \S+ as anon_1 from product where \(?product\.search_vector @@", s):
            return "search: does the word match anything (typo check)"
        return "search: all-terms exists probe"
    if "string_agg(p.item" in s and "with recursive subtree" in s:
        return "list page of a category subtree (each category's first products, merged)"
    if "string_agg(p.item" in s:
        return "list page (stored items joined by PostgreSQL)"
    if "left join product_variant v" in s:
        return "product by id (+ brand, category, variants)"
    if "with recursive subtree" in s:
        return "list page, category subtree (recursive CTE)"
    if "from product left outer join brand on" in s:
        return "search: page of results"
    if "from product left outer join brand as" in s and "limit" in s:
        return "list page"
    if "from product left outer join brand as" in s:
        return "product by id (+ brand, category)"
    return s[:60]


class StatementCapture:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statements: list[tuple[str, Any]] = []

    def _before(
        self,
        _conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> StatementCapture:
        event.listen(self.engine.sync_engine, "before_cursor_execute", self._before)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._before)


async def collect_plans(url: str, ids: CatalogIds, search_q: str, suggest_q: str) -> list[Plan]:
    """Run the service functions behind the main reads once, capture their SQL and
    `EXPLAIN (ANALYZE, BUFFERS)` each statement."""
    engine = create_engine(Settings(database_url=url))
    sessionmaker = create_sessionmaker(engine)
    product_id = uuid.UUID(ids.active[len(ids.active) // 2])

    reads = await PostgresProductReads.connect(Settings(database_url=url))

    async def by_id(_session: AsyncSession) -> None:
        await reads.product_body(ANONYMOUS, product_id=product_id)

    async def list_page(_session: AsyncSession) -> None:
        await reads.page_body(
            ANONYMOUS, ProductFilters(), sort=ProductSort.created_at_desc, limit=20, cursor=None
        )

    async def list_category(_session: AsyncSession) -> None:
        await reads.page_body(
            ANONYMOUS,
            ProductFilters(category_id=uuid.UUID(ids.roots[0])),
            sort=ProductSort.created_at_desc,
            limit=20,
            cursor=None,
        )

    async def list_price(_session: AsyncSession) -> None:
        await reads.page_body(
            ANONYMOUS,
            ProductFilters(price_min=Decimal(50), price_max=Decimal(200)),
            sort=ProductSort.price,
            limit=20,
            cursor=None,
        )

    backend = PostgresSearchBackend()

    async def suggest(session: AsyncSession) -> None:
        await backend.suggest(session, suggest_q, 10)

    async def search(session: AsyncSession) -> None:
        await search_service.run_search(
            session,
            backend,
            q=search_q,
            filters=SearchFilters(),
            sort=None,
            page=1,
            page_size=20,
            facet_attributes=("color",),
        )

    plans: list[Plan] = []
    groups: list[tuple[str, Callable[[AsyncSession], Awaitable[None]]]] = [
        ("GET /api/v1/products/{id}", by_id),
        ("GET /api/v1/products?limit=20", list_page),
        ("GET /api/v1/products?limit=20&category_id=<root category>", list_category),
        ("GET /api/v1/products?limit=20&price_min=50&price_max=200&sort=price", list_price),
        (f"GET /api/v1/search?q={search_q}&facet=color", search),
        (f"GET /api/v1/search/suggest?q={suggest_q}", suggest),
    ]
    try:
        async with engine.connect() as conn:  # first connect: dialect initialisation queries
            await conn.execute(text("SELECT 1"))
        for request, work in groups:
            capture = StatementCapture(engine)

            def listener(
                sql: str, params: Sequence[Any], capture: StatementCapture = capture
            ) -> None:
                capture.statements.append((sql, list(params)))

            reads.statement_listeners.append(listener)
            with capture:
                async with sessionmaker() as session:
                    await work(session)
            reads.statement_listeners.remove(listener)
            # Replayed in one transaction, like the request: `SET LOCAL` statements are run
            # (they change the plans), reads are explained, anything else is left out.
            async with engine.connect() as conn:
                if request.startswith(f"GET {API_PREFIX}/search"):
                    # Searches run on the search pool, whose connections carry these settings.
                    for name, value in SEARCH_SERVER_SETTINGS.items():
                        await conn.exec_driver_sql(f"SET {name} = '{value}'")
                for statement, parameters in capture.statements:
                    params = tuple(parameters) if isinstance(parameters, list | tuple) else ()
                    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
                    if verb == "SET":
                        await conn.exec_driver_sql(statement, params)
                        continue
                    if verb not in ("SELECT", "WITH", "(SELECT"):
                        continue
                    label = f"{request}: {_classify(statement)}"
                    try:
                        async with conn.begin_nested():
                            result = await conn.exec_driver_sql(
                                "EXPLAIN (ANALYZE, BUFFERS) " + statement, params
                            )
                            lines = [str(r[0]) for r in result.all()]
                    except Exception as exc:  # one plan we cannot get must not lose the others
                        lines = [f"(EXPLAIN failed: {type(exc).__name__}: {exc})"[:300]]
                    plans.append(Plan(label, statement, lines, plan_indexes(lines)))
                await conn.rollback()
    finally:
        await reads.close()
        await engine.dispose()
    return plans


# --------------------------------------------------------------------------- report


def render_table(rows: Sequence[Row]) -> str:
    header = (
        f"| {'scenario':<40} | {'paths':>6} | {'rps':>8} | {'% of bare':>9} | {'p50 ms':>7} "
        f"| {'p95 ms':>7} | {'p99 ms':>7} | {'errors':>6} | {'app CPU + PG ms/req':>20} "
        f"| {'target':<40} | {'met':<6} |"
    )
    sep = "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"
    lines = [header, sep]
    for row in rows:
        s, r = row.scenario, row.result
        target = s.target.describe() if s.server != "bare" else "(baseline)"
        title = f"({s.key}) {s.title}"
        cpu = (
            f"{row.server_cpu_ms:.2f} + {row.pg_ms:.2f}"
            if s.server != "bare"
            else (f"{row.server_cpu_ms:.2f}")
        )
        lines.append(
            f"| {title:<40} | {len(s.paths):>6,} | {r.rps:>8,.0f} | {row.ratio:>9.1%} "
            f"| {r.p50_ms:>7.2f} | {r.p95_ms:>7.2f} | {r.p99_ms:>7.2f} | {row.errors:>6} "
            f"| {cpu:>20} | {target:<40} | {row.verdict():<6} |"
        )
    return "\n".join(lines)


def render_kinds(row: Row) -> str:
    """Per kind of request of the mixed scenario: requests/s, latency, errors."""
    r = row.result
    header = (
        f"| {'request':<48} | {'share':>6} | {'requests':>9} | {'rps':>7} | {'p50 ms':>7} "
        f"| {'p95 ms':>7} | {'p99 ms':>7} | {'max ms':>8} | {'errors':>6} | {'statuses':<24} |"
    )
    sep = "|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|"
    what = {
        "read": "GET /products/{id} (a tenth: the seller's)",
        "search": "GET /search?q=...&facet=color",
        "suggest": "GET /search/suggest?q=...",
        "write": "PATCH /products/{id}, POST .../stock-adjustments",
    }
    lines = [header, sep]
    total = max(1, sum(k.requests for k in r.kinds))
    for k in r.kinds:
        codes = ", ".join(f"{c}: {n:,}" for c, n in k.codes.items()) or "none"
        lines.append(
            f"| {what[k.kind]:<48} | {k.requests / total:>6.1%} | {k.requests:>9,} "
            f"| {k.requests / max(1e-9, r.duration_s):>7,.0f} | {k.p50_ms:>7.2f} "
            f"| {k.p95_ms:>7.2f} | {k.p99_ms:>7.2f} | {k.max_ms:>8.2f} | {k.errors:>6} "
            f"| {codes:<24} |"
        )
    if r.unmatched:
        lines.append(f"\n{r.unmatched} responses carried no X-Request-ID of a request sent.")
    return "\n".join(lines)


def render_statuses(rows: Sequence[Row]) -> str:
    lines = []
    for row in rows:
        r = row.result
        socket_errors = ", ".join(f"{k} {v}" for k, v in r.socket_errors.items() if v) or "none"
        codes = ", ".join(f"{k}: {v:,}" for k, v in r.codes.items()) or "none"
        lines.append(
            f"- ({row.scenario.key}) {r.requests:,} requests in {r.duration_s:.1f} s "
            f"({codes}; socket errors: {socket_errors}; warm-up errors: {row.warm_errors}; "
            f"max {r.max_ms:.1f} ms; {r.bytes_read / max(1, r.requests):,.0f} bytes/response)"
            + (f"; {row.cpu.describe()}" if row.cpu is not None else "")
            + (
                f"; connections per worker {'/'.join(map(str, row.connections))}"
                if row.connections
                else ""
            )
            + pg_note(row)
        )
    return "\n".join(lines)


async def _sample_connections(server: Server, delay: float) -> list[int]:
    await asyncio.sleep(delay)
    return await asyncio.to_thread(connections_per_process, server.worker_pids(), server.port)


def pg_note(row: Row) -> str:
    if row.pg_sessions is None or row.pg_commits is None:
        return ""
    return (
        f"; PostgreSQL: {row.pg_sessions:,} new connections, "
        f"{row.pg_commits / max(1, row.result.requests):.2f} commits/request"
    )


def balance_note(rows: Sequence[Row]) -> str:
    """Keep-alive connections stay with the worker that accepted them: say when they were
    spread unevenly (all workers accept from one shared socket)."""
    uneven = [
        r
        for r in rows
        if len(r.connections) > 1 and max(r.connections) > 2 * max(1, min(r.connections))
    ]
    if not uneven:
        return ""
    which = ", ".join(f"({r.scenario.key}) {'/'.join(map(str, r.connections))}" for r in uneven)
    return (
        f"Connections per worker were uneven in {which}: the workers accept from one shared "
        "socket and wrk's keep-alive connections stay where they landed, so in those scenarios "
        "one worker did most of the work (fewer requests/s than with an even spread)."
    )


def rate_limit_note(rows: Sequence[Row]) -> str:
    """429s cannot come from the configured limit, which no run can reach."""
    limited = [r for r in rows if r.result.codes.get("429")]
    if not limited:
        return ""
    keys = ", ".join(f"({r.scenario.key}) {r.result.codes['429']:,}" for r in limited)
    return (
        f"**429 Too Many Requests** in {keys}: the limits are set to {HIGH_LIMIT}, which this "
        "run cannot reach, so the rate limiter refused requests it should have admitted. Those "
        "scenarios' requests/s and latencies mostly measure cheap 429 answers."
    )


def noise_note(rows: Sequence[Row]) -> str:
    """How much CPU processes outside the benchmark took while it measured."""
    usages = [(r.cpu.other, r.scenario.key) for r in rows if r.cpu is not None]
    if not usages:
        return ""
    worst, key = max(usages)
    text_ = (
        f"Other processes on the machine used at most {worst:.0%} of the CPU during a "
        f"measurement (scenario {key})"
    )
    if worst > 0.10:
        return text_ + ": the figures of the affected scenarios are pessimistic."
    return text_ + "."


def _sh(*argv: str) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_description() -> list[str]:
    model = ""
    for line in _sh("lscpu").splitlines():
        if line.lower().startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = _sh("nproc") or str(os.cpu_count())
    memory = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    wrk = _sh("wrk", "--version").splitlines()
    return [
        f"CPU: {cores} cores (`nproc`), {model or 'unknown model'} (`lscpu`); {memory}",
        f"OS: {platform.platform()}; Python {platform.python_version()}",
        f"wrk: {wrk[0] if wrk else 'unknown'}",
    ]


async def server_versions(url: str) -> str:
    engine = create_engine(Settings(database_url=url))
    try:
        async with engine.connect() as conn:
            pg = (await conn.execute(text("SHOW server_version"))).scalar_one()
            buffers = (await conn.execute(text("SHOW shared_buffers"))).scalar_one()
    finally:
        await engine.dispose()
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    return f"PostgreSQL {pg} (shared_buffers {buffers}), Redis {info.get('redis_version', '?')}"


def mixed_lines(rows: Sequence[Row], args: argparse.Namespace) -> list[str]:
    mixed = [r for r in rows if r.result.kinds]
    if not mixed:
        return []
    return [
        f"Mixed traffic (h), per kind of request: one `wrk -t{WRK_THREADS} "
        f"-c{WRK_CONNECTIONS} -d{args.mixed_duration}s` run on the cache-on server sending a "
        f"shuffled sequence of {MIXED_SEQUENCE:,} requests (70% product reads, 20% searches "
        "with a facet, 5% suggestions, 5% writes by a seller with a bearer token: price "
        "changes and stock adjustments of its own products) round-robin. Each response is "
        "paired with its request by the X-Request-ID the server echoes, which gives the "
        "latency per kind. Writes invalidate the product's cached answers and the list and "
        "search caches, so searches are often computed, not served from the cache.",
        "",
        render_kinds(mixed[0]),
        "",
    ]


def load_section(
    rows: Sequence[Row],
    *,
    command: str,
    args: argparse.Namespace,
    machine: list[str],
    versions: str,
    catalog_line: str,
    baseline_note: str = "",
) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        SECTION_LOAD,
        "",
        f"Command: `{command}` (what `make bench-load` runs). Date: {when}.",
        "",
        "Machine (everything on the same host: wrk, both servers, PostgreSQL, Redis):",
        "",
        *[f"- {m}" for m in machine],
        f"- {versions}",
        "",
        f"Catalog: {catalog_line}. Server: `catalog serve --workers {WORKERS} --server "
        f"{SERVER[0]}` ({SERVER_DETAIL[SERVER[0]]}) in the production profile (PostgreSQL + "
        "Redis), every middleware on, logging at WARNING, rate limits raised out of the way. "
        f"Baseline: `bench/bare_app.py`, one route returning fixed bytes, same server and "
        "options, "
        'measured in the same run; "% of bare" is the scenario\'s requests/s over the bare '
        "app's.",
        "",
        f"Each scenario: `wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s "
        f"--timeout {WRK_TIMEOUT}` after a {args.warmup} s warm-up run; the Lua script sends its "
        "paths round-robin. Errors are responses with status >= 400 plus wrk's socket errors "
        "(and failed warm-up requests). Cached scenarios request each path once before the "
        "warm-up, so the measured requests are cache hits; uncached ones run on the same "
        "server restarted with `CATALOG_CACHE_ENABLED=false`. Before each scenario the run "
        f"waits (at most {args.wait_quiet:.0f} s) until other processes use less than 15% of "
        "the CPU.",
        "",
        render_table(rows),
        "",
        *mixed_lines(rows, args),
        "app CPU + PG ms/req: CPU time of the server's processes (its workers) per request, "
        "plus the time PostgreSQL spent executing statements of the benchmark's database per "
        "request (`pg_stat_database.active_time`: wall time, so it grows when backends wait "
        "for a CPU). Unlike requests/s, the app CPU hardly depends on what else runs on the "
        "machine: bare app CPU / scenario app CPU is about the share of bare a dedicated server "
        "reaches when the Python process is the bottleneck.",
        "",
        "Targets (from the issue): cached GET >= 35% of bare with p99 <= 25 ms; 304 >= 35%; "
        "uncached GET >= 12%; list of 20 >= 10%; zero errors everywhere.",
        "",
        noise_note(rows),
        "",
        *([baseline_note, ""] if baseline_note else []),
        *([balance_note(rows), ""] if balance_note(rows) else []),
        *([rate_limit_note(rows), ""] if rate_limit_note(rows) else []),
        "Responses and CPU use per scenario:",
        "",
        render_statuses(rows),
        "",
    ]
    return "\n".join(out)


def plans_section(plans: Sequence[Plan], products: int) -> str:
    out = [
        SECTION_PLANS,
        "",
        f"`EXPLAIN (ANALYZE, BUFFERS)` on the {products:,}-product catalog of the load benchmark, "
        "of the SQL the service functions send (captured from SQLAlchemy, replayed with the "
        "same parameters after one warm execution). Key lines only; "
        "`uv run python -m bench.load --explain` prints the full plans.",
        "",
    ]
    for plan in plans:
        sql = " ".join(plan.sql.split())
        out += [
            f"### {plan.label}",
            "",
            f"Indexes: {', '.join(plan.indexes) or 'none (no table scan)'}",
            "",
            "```sql",
            sql if len(sql) <= 600 else sql[:600] + " ...",
            "```",
            "",
            "```",
            *key_lines(plan.lines),
            "```",
            "",
        ]
    return "\n".join(out)


def replace_sections(document: str, sections: dict[str, str]) -> str:
    """Replace each `## heading` section (up to the next `## `), or append it."""
    lines = document.splitlines()
    for heading, body in sections.items():
        start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
        new = [*body.rstrip("\n").splitlines(), ""]
        if start is None:
            if lines and lines[-1].strip():
                lines.append("")
            lines += new
            continue
        end = len(lines)
        in_code = False
        for i in range(start + 1, len(lines)):
            if lines[i].startswith("```"):
                in_code = not in_code
            elif not in_code and lines[i].startswith("## "):
                end = i
                break
        lines[start:end] = new
    return "\n".join(lines).rstrip("\n") + "\n"


def write_doc(path: Path, sections: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = path.read_text() if path.exists() else "# Performance\n"
    path.write_text(replace_sections(document, sections))


# --------------------------------------------------------------------------- the run


def _check_deadline(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise Deadline(f"time limit reached before {what}")


async def measure(
    scenario: Scenario,
    server: Server,
    workdir: Path,
    args: argparse.Namespace,
    deadline: float,
    py_spy: str | None,
) -> Row:
    _check_deadline(deadline, f"scenario {scenario.key}")
    warm_errors = 0
    if scenario.warm_each:
        warm_errors, etags = await warm_paths(
            server.base_url, scenario.paths, want_etags=scenario.key == "c"
        )
        if scenario.key == "c":
            scenario.etags = etags
    duration = args.mixed_duration if scenario.mixed is not None else args.duration
    if scenario.mixed is not None:
        script = write_mixed_script(workdir, scenario)
    else:
        script = write_wrk_script(workdir, scenario)
    if args.wait_quiet:
        await wait_until_quiet(min(args.wait_quiet, max(0.0, deadline - time.monotonic())))
    if args.warmup:
        await run_wrk(script, server.port, args.warmup)
    profilers: list[asyncio.subprocess.Process] = []
    if py_spy is not None and args.profile and scenario.server != "bare":
        profilers = await profile_workers(
            py_spy, server.worker_pids(), duration, Path(args.profile), scenario.key
        )
    database = server.env.get("CATALOG_DATABASE_URL", "").rsplit("/", 1)[-1]
    pg_before = await pg_counters(database) if database else None
    before = await asyncio.to_thread(cpu_snapshot)
    server_before = await asyncio.to_thread(server.cpu_ticks)
    sample = asyncio.create_task(_sample_connections(server, duration / 2))
    result = await run_wrk(script, server.port, duration)
    connections = await sample
    server_ticks = await asyncio.to_thread(server.cpu_ticks) - server_before
    after = await asyncio.to_thread(cpu_snapshot)
    if pg_before is not None:
        await asyncio.sleep(1.0)  # backends report their statistics about once a second
        pg_after = await pg_counters(database)
    cpu = cpu_usage(before, after)
    for proc in profilers:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=30)
    per_request = 1000 / _CLOCK_TICKS / max(1, result.requests)
    row = Row(
        scenario,
        result,
        warm_errors,
        cpu=cpu,
        connections=connections,
        server_cpu_ms=server_ticks * per_request,
    )
    if pg_before is not None:
        # Minus the connection of the first reading.
        row.pg_sessions = max(0, pg_after[0] - pg_before[0] - 1)
        row.pg_commits = pg_after[1] - pg_before[1]
        row.pg_ms = (pg_after[2] - pg_before[2]) / max(1, result.requests)
    print(
        f"  ({scenario.key}) {scenario.title}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} "
        f"p95 {result.p95_ms:.2f} p99 {result.p99_ms:.2f} ms, {row.errors} errors "
        f"(statuses {result.codes}); CPU per request: server {row.server_cpu_ms:.2f} ms, "
        f"PostgreSQL {row.pg_ms:.2f} ms; {cpu.describe()}{pg_note(row)}; connections per "
        f"worker {'/'.join(map(str, connections))}",
        flush=True,
    )
    if result.kinds:
        print(render_kinds(row), flush=True)
    if row.errors:
        errors = [
            line
            for line in (
                await asyncio.to_thread(server.log.read_text, errors="replace")
            ).splitlines()
            if '"level": "error"' in line or '"level": "warning"' in line
        ]
        for line in errors[-3:]:
            print(f"    server log: {line[:400]}", flush=True)
    if profilers:
        files = [
            Path(args.profile) / f"{scenario.key}.worker{n}.txt" for n in range(len(profilers))
        ]
        print(await asyncio.to_thread(summarize_profile, files), flush=True)
    return row


async def run(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.time_limit - CLEANUP_RESERVE_S
    command = "uv run python -m bench.load" + (" " + shlex.join(args.argv) if args.argv else "")
    started = time.perf_counter()
    catalog = generate_catalog(seed=CATALOG_SEED, products=args.products)
    queries = search_queries(catalog, SEARCH_QUERIES)
    prefixes = suggest_prefixes(catalog, SUGGEST_PREFIXES)
    catalog_line = (
        f"`generate_catalog(seed={CATALOG_SEED}, products={args.products})`: "
        f"{len(catalog.products):,} products, {catalog.variant_count:,} variants, "
        f"{len(catalog.brands)} brands, {len(catalog.categories)} categories"
    )
    print(f"generated {catalog_line} in {time.perf_counter() - started:.1f} s", flush=True)
    py_spy = None
    if args.profile:
        await asyncio.to_thread(Path(args.profile).mkdir, parents=True, exist_ok=True)
        py_spy = await asyncio.to_thread(py_spy_binary)
        if py_spy is None:
            print("warning: py-spy not found, profiling disabled", file=sys.stderr)
    redis_prefix = f"catalog-load-{secrets.token_hex(6)}:"
    servers: list[Server] = []
    plans: list[Plan] = []
    try:
        async with throwaway_database("catalog_load") as url:
            try:
                print(f"database {url.rsplit('/', 1)[-1]}: migrating and seeding ...", flush=True)
                timings = await asyncio.wait_for(
                    migrate_and_seed(url, catalog), timeout=max(1.0, deadline - time.monotonic())
                )
                print(
                    "migrations {migrate:.1f} s, seeding {seed:.1f} s, VACUUM ANALYZE "
                    "{analyze:.1f} s".format(**timings),
                    flush=True,
                )
                del catalog
                ids = await catalog_ids(url)
                scenarios = build_scenarios(ids, queries, prefixes)
                if args.scenarios:
                    wanted = set(args.scenarios.split(","))
                    scenarios = [s for s in scenarios if s.key in wanted or s.key == "a"]
                with tempfile.TemporaryDirectory(prefix="catalog-load-") as tmp:
                    rows = await _run_scenarios(
                        scenarios, url, redis_prefix, Path(tmp), args, deadline, py_spy, servers
                    )
                if time.monotonic() < deadline:
                    print("collecting query plans ...", flush=True)
                    plans = await collect_plans(url, ids, args.search_query, args.suggest_query)
                versions = await server_versions(url)
            finally:
                # Servers first: the database is dropped once nothing uses it.
                for server in servers:
                    await asyncio.shield(server.stop())
    except Deadline as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TimeoutError:
        print("error: time limit reached while seeding", file=sys.stderr)
        return 2
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            await delete_redis_keys(REDIS_URL, redis_prefix)

    rows, baseline_note = pick_baseline(rows)
    order = {s.key: i for i, s in enumerate(build_order())}
    rows.sort(key=lambda r: order.get(r.scenario.key, 99))
    bare_rps = next((r.result.rps for r in rows if r.scenario.server == "bare"), math.nan)
    for row in rows:
        row.ratio = row.result.rps / bare_rps if bare_rps else math.nan
    print()
    print(render_table(rows))
    print()
    for row in rows:
        if row.result.kinds:
            print(render_kinds(row))
            print()
    print(render_statuses(rows))
    if baseline_note:
        print(baseline_note)
    if args.explain:
        for plan in plans:
            print()
            print("=" * 100)
            print(plan.label)
            print("indexes:", ", ".join(plan.indexes) or "none")
            print(" ".join(plan.sql.split()))
            print("\n".join(plan.lines))
    full = not args.scenarios
    if args.no_write or not full:
        print("\n(docs not written: --no-write or a subset of scenarios)")
    else:
        sections = {
            SECTION_LOAD: load_section(
                rows,
                command=command,
                args=args,
                machine=machine_description(),
                versions=versions,
                catalog_line=catalog_line,
                baseline_note=baseline_note,
            ),
            SECTION_PLANS: plans_section(plans, args.products),
        }
        output = Path(args.output)
        await asyncio.to_thread(write_doc, output, sections)
        print(f"\nwritten to {output}")
    failed = [r for r in rows if r.errors]
    for row in failed:
        print(f"error: scenario ({row.scenario.key}) had {row.errors} errors", file=sys.stderr)
    return 1 if failed else 0


def pick_baseline(rows: list[Row]) -> tuple[list[Row], str]:
    """Keep one of the bare measurements (first and last of the run): the one during which
    other processes used the least CPU. Returns the rows and a sentence about the choice."""
    bare = [r for r in rows if r.scenario.server == "bare"]
    if len(bare) < 2:
        return rows, ""
    chosen = min(bare, key=lambda r: r.cpu.other if r.cpu is not None else 1.0)
    described = "; ".join(
        f"{'start' if i == 0 else 'end'} {r.result.rps:,.0f} req/s "
        f"(other processes {r.cpu.other if r.cpu is not None else math.nan:.0%} of the CPU)"
        for i, r in enumerate(bare)
    )
    note = (
        f"The bare endpoint was measured at the start and at the end of the run ({described}); "
        f"the table uses the {'start' if chosen is bare[0] else 'end'} one, the less disturbed."
    )
    return [r for r in rows if r.scenario.server != "bare" or r is chosen], note


def build_order() -> list[Scenario]:
    """The scenario keys in table order (the run order differs: grouped by server)."""
    keys = ["a", "b", "c", "d", "e-off", "e-on", "f-off", "f-on", "g-off", "g-on", "h"]
    return [Scenario(k, "", "", []) for k in keys]


async def _run_scenarios(
    scenarios: list[Scenario],
    url: str,
    redis_prefix: str,
    workdir: Path,
    args: argparse.Namespace,
    deadline: float,
    py_spy: str | None,
    servers: list[Server],
) -> list[Row]:
    rows: list[Row] = []
    logs = Path(args.logs) if args.logs else workdir
    logs.mkdir(parents=True, exist_ok=True)
    bare = bare_server(logs / "bare.log")
    servers.append(bare)
    cached = catalog_server(url, redis_prefix, cache=True, log=logs / "catalog-cache-on.log")
    servers.append(cached)
    print("starting the bare app and the server (cache on) ...", flush=True)
    await asyncio.gather(bare.start("/bare"), cached.start(READY_PATH))
    for scenario in scenarios:
        if scenario.server == "bare":
            rows.append(await measure(scenario, bare, workdir, args, deadline, py_spy))
    cached_scenarios = [s for s in scenarios if s.server == "cached"]
    # The mixed one last: its writes invalidate what the others cached.
    cached_scenarios.sort(key=lambda s: s.mixed is not None)
    for scenario in cached_scenarios:
        if scenario.mixed is not None:
            print("creating the seller and its products of the mixed scenario ...", flush=True)
            await prepare_mixed(cached, scenario)
        rows.append(await measure(scenario, cached, workdir, args, deadline, py_spy))
    await cached.stop()
    if any(s.server == "uncached" for s in scenarios):
        print("restarting the server with CATALOG_CACHE_ENABLED=false ...", flush=True)
        uncached = catalog_server(
            url, redis_prefix, cache=False, log=logs / "catalog-cache-off.log"
        )
        servers.append(uncached)
        await uncached.start(READY_PATH)
        for scenario in scenarios:
            if scenario.server == "uncached":
                rows.append(await measure(scenario, uncached, workdir, args, deadline, py_spy))
        await uncached.stop()
    # The baseline again at the end: on a shared machine one of the two may have been disturbed
    # by other work; the table uses the quieter one (see `pick_baseline`).
    again = next((s for s in scenarios if s.server == "bare"), None)
    if again is not None:
        print("the bare endpoint once more ...", flush=True)
        rows.append(await measure(again, bare, workdir, args, deadline, py_spy))
    await bare.stop()
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    raw = list(argv) if argv is not None else sys.argv[1:]
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--products", type=int, default=100_000, help="catalog size (100000)")
    parser.add_argument(
        "--duration",
        type=int,
        default=DEFAULT_DURATION_S,
        help=f"seconds per scenario ({DEFAULT_DURATION_S}, at most {MAX_DURATION_S})",
    )
    parser.add_argument(
        "--mixed-duration",
        type=int,
        default=DEFAULT_MIXED_DURATION_S,
        help=f"seconds of the mixed scenario ({DEFAULT_MIXED_DURATION_S}, at most "
        f"{MAX_MIXED_DURATION_S})",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_S,
        help=f"seconds of unmeasured load before each scenario ({DEFAULT_WARMUP_S}, 0 for none)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="print the full EXPLAIN (ANALYZE, BUFFERS) plans"
    )
    parser.add_argument(
        "--search-query", default="office chair", help="the search of the query plans"
    )
    parser.add_argument(
        "--suggest-query", default="chai", help="the suggestion prefix of the query plans"
    )
    parser.add_argument(
        "--scenarios",
        help="comma-separated subset, e.g. d,e-off (the bare one always runs; docs not written)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each server scenario's workers with py-spy (raw stacks) into DIR",
    )
    parser.add_argument("--logs", metavar="DIR", help="keep the servers' logs in DIR")
    parser.add_argument(
        "--server",
        choices=("granian", "uvicorn"),
        default="granian",
        help="HTTP server of the catalog and of the bare app (granian)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=DEFAULT_WAIT_QUIET_S,
        metavar="SECONDS",
        help="before each scenario, wait up to SECONDS for other processes to use < 15%% of "
        f"the CPU ({DEFAULT_WAIT_QUIET_S:.0f}; 0: do not wait)",
    )
    parser.add_argument("--output", default=str(DOC_PATH), help="the document to update")
    parser.add_argument("--no-write", action="store_true", help="do not update the document")
    parser.add_argument(
        "--time-limit", type=float, default=TIME_LIMIT_S, help="seconds for everything (1800)"
    )
    args = parser.parse_args(raw)
    if args.products < 100:
        parser.error("--products must be at least 100")
    if not 1 <= args.duration <= MAX_DURATION_S:
        parser.error(f"--duration must be between 1 and {MAX_DURATION_S} seconds")
    if not 1 <= args.mixed_duration <= MAX_MIXED_DURATION_S:
        parser.error(f"--mixed-duration must be between 1 and {MAX_MIXED_DURATION_S} seconds")
    if not 0 <= args.warmup <= 10:
        parser.error("--warmup must be between 0 and 10 seconds")
    if args.scenarios:
        known = {s.key for s in build_order()}
        unknown = set(args.scenarios.split(",")) - known
        if unknown:
            parser.error(f"unknown scenarios {sorted(unknown)}; known: {sorted(known)}")
    args.argv = raw
    SERVER[0] = args.server
    return args


async def cancel_on_sigterm(work: Awaitable[int]) -> int:
    """Await `work`; SIGTERM cancels it like Ctrl-C does, so the cleanups still run."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        print("cancelled: cleaned up", file=sys.stderr)
        return 143


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (make bench-load installs it)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(cancel_on_sigterm(run(args)))
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
