"""Web API benchmark: requests/s and latency of the readings endpoint and the status page, next to a bare
FastAPI app answering the same bodies from memory, in the same run.

    .venv/bin/python -m bench.api [--seconds 10] [--connections 16] [--path /api/v1/readings] [--keep DIR]

All from one run:
1. ours: `roomguard`'s app (api.app.create_app with the example site, deploy/examples/site.yaml) over a
   fresh migrated records database in DIR, with a StaticLive snapshot of every device of the example
   (every metric its profile produces, quality good: api/live_model.py), served by uvicorn with one
   worker in a process of its own; the calls carry a bearer token of a viewer;
2. peer: a bare FastAPI app on uvicorn (one worker, its own process) with one route per path that
   returns the very body ours answered (JSON parsed once, returned as the same object; HTML as text);
3. load: from this process, `--connections` concurrent keep-alive connections (httpx async) call one
   path for `--seconds` (after a one-second warm-up), on ours and then on the peer; requests/s, the
   p50 and p99 latency of each and how many answers were not 200.
Paths: `--path` (default GET /api/v1/readings) and GET / (the status page). While the readings route
does not exist (404) the API's own /api/v1/me and /healthz stand in for it, and it says so.
Targets (issue 14): ours ≥ 0.5x the peer's requests/s, and p99 < 100 ms.

The load generator shares the machine with both servers: on a 2-core box the figures say how the two
compare under the same client, not what a faster client would get.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx

READINGS = "/api/v1/readings"
STAND_INS = ("/api/v1/me", "/healthz")
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
START_LIMIT_S = 60.0
ROOT = Path(__file__).resolve().parent.parent


# -- the servers (each in a process of its own: `--serve ours|peer`) ------------------------------------


def _value(shape: Any) -> Any:
    """A plausible value of a metric of this shape."""
    return {
        "number": 21.5,
        "integer": 1,
        "bool": False,
        "string": "ok",
        "enum": min(shape.states) if shape.states else "ok",
    }[shape.kind]


def example_snapshot(site: Any) -> Any:
    """A LiveSnapshot of every device of `site`: every metric its profile produces, quality good."""
    from api.live_model import DeviceLive, LiveSnapshot, MetricLive
    from devices.profile_metrics import profile_metrics
    from devices.registry import ProfileRegistry

    now = datetime.now(UTC)
    registry = ProfileRegistry.builtin()
    devices = []
    for d in site.devices:
        profile = registry.get(d.profile)
        metrics = {
            name: MetricLive(_value(shape), "good") for name, shape in profile_metrics(profile).items()
        }
        devices.append(
            DeviceLive(
                d.id,
                d.name,
                str(profile.device_class),
                d.room,
                d.zone,
                d.rack,
                d.profile,
                at=now,
                quality="good",
                metrics=metrics,
                status="online",
                status_at=now,
            )
        )
    return LiveSnapshot(now, connected=True, devices=tuple(devices))


def serve_ours(folder: Path, port: int) -> None:
    """Our app over the records database in `folder`, the example site and its snapshot."""
    import uvicorn

    from api.app import create_app
    from api.live_model import StaticLive
    from siteconfig.config import load_site
    from testkit.example_site import EXAMPLE

    site = load_site(EXAMPLE)
    settings = site.api.model_copy(update={"port": port})
    # The snapshot is injected: without `live=` the app would also subscribe to the example's broker.
    live = StaticLive(example_snapshot(site))
    app = create_app(settings, records_url=folder / "records.db", state_dir=folder, site=site, live=live)
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


def serve_peer(folder: Path, port: int) -> None:
    """A bare FastAPI app answering each recorded path with its body, from memory."""
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    bodies: dict[str, dict[str, Any]] = json.loads((folder / "bodies.json").read_text())
    app = FastAPI()

    def route(kind: str, body: Any) -> Any:
        if kind == "html":

            async def page() -> HTMLResponse:
                return HTMLResponse(body)

            return page

        async def data() -> Any:
            return body

        return data

    for path, recorded in bodies.items():
        app.get(path)(route(recorded["kind"], recorded["body"]))
    uvicorn.run(app, host="127.0.0.1", port=port, workers=1, log_level="warning", access_log=False)


# -- the load ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """One load run's result."""

    requests: int
    failed: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        """Requests per second (answered with 200)."""
        return (self.requests - self.failed) / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        """`1,234 req/s  p50 3.1 ms  p99 9.8 ms` (and the failures, if any)."""
        failed = f"  NOT 200: {self.failed:,}" if self.failed else ""
        return f"{self.rate:>8,.0f} req/s  p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms{failed}"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(base: str, path: str, token: str, connections: int, seconds: float) -> Figures:
    """`connections` concurrent callers of GET `path` for `seconds` (after a 1 s warm-up)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
        latencies: list[float] = []
        failed = 0

        async def caller(until: float, record: bool) -> None:
            nonlocal failed
            while (start := time.perf_counter()) < until:
                response = await client.get(path)
                if record:
                    latencies.append(time.perf_counter() - start)
                    failed += response.status_code != 200

        warm = time.perf_counter() + min(1.0, seconds)
        await asyncio.gather(*(caller(warm, False) for _ in range(connections)))
        begin = time.perf_counter()
        await asyncio.gather(*(caller(begin + seconds, True) for _ in range(connections)))
        took = time.perf_counter() - begin
    ms = [x * 1000 for x in latencies]
    return Figures(len(latencies), failed, took, _percentile(ms, 0.5), _percentile(ms, 0.99))


# -- the run ----------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(mode: str, folder: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [sys.executable, "-m", "bench.api", "--serve", mode, "--port", str(port), "--keep", str(folder)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_LIMIT_S
    while True:
        try:
            httpx.get(f"{base}/openapi.json" if mode == "peer" else f"{base}/healthz", timeout=2)
            return proc, base
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{mode} server did not start:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def prepare(folder: Path) -> str:
    """The records database (migrated) with a viewer and a bearer token for them; returns the token."""
    from api.store import ApiStore
    from records.audit import Actor
    from records.db import make_engine, session_factory
    from records.migrate import upgrade

    engine = make_engine(folder / "records.db")
    upgrade(engine)
    store = ApiStore(session_factory(engine))
    actor = Actor("bench", "cli:bench")
    now = datetime.now(UTC)
    store.add_user("bench-viewer", "bench-pass-1", ["viewer"], actor, now)
    token = store.create_token("bench", "bench-viewer", actor, now)
    engine.dispose()
    return token


def record_bodies(base: str, token: str, wanted: str) -> dict[str, dict[str, Any]]:
    """GET each path of ours once: the bodies the peer will answer with (stand-ins for a 404 path)."""
    headers = {"Authorization": f"Bearer {token}"}
    paths = [wanted, "/"]
    first = httpx.get(base + wanted, headers=headers, timeout=30)
    if first.status_code == 404:
        print(f"note: GET {wanted} answers 404 (not built yet): measuring {', '.join(STAND_INS)} instead")
        paths = [*STAND_INS, "/"]
    bodies: dict[str, dict[str, Any]] = {}
    for path in paths:
        r = httpx.get(base + path, headers=headers, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"GET {path} answered {r.status_code}: {r.text[:300]}")
        html = r.headers.get("content-type", "").startswith("text/html")
        bodies[path] = {"kind": "html" if html else "json", "body": r.text if html else r.json()}
    return bodies


def run(args: argparse.Namespace) -> list[tuple[str, Figures, Figures]]:
    """The whole benchmark; returns (path, ours, peer) per path, as printed."""
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="roomguard-bench-api-"))
    root.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    results: list[tuple[str, Figures, Figures]] = []
    try:
        token = prepare(root)
        ours_proc, ours = _start("ours", root, root / "ours.log")
        procs.append(ours_proc)
        bodies = record_bodies(ours, token, args.path)
        (root / "bodies.json").write_text(json.dumps(bodies, ensure_ascii=False))
        peer_proc, peer = _start("peer", root, root / "peer.log")
        procs.append(peer_proc)
        cores = os.cpu_count()
        print(
            f"{args.connections} connections x {args.seconds:g} s per path, uvicorn 1 worker each, "
            f"{cores} cores; body sizes: "
            + ", ".join(
                f"{p} {len(json.dumps(b['body'], ensure_ascii=False)):,} B" for p, b in bodies.items()
            ),
            flush=True,
        )
        for path in bodies:
            mine = asyncio.run(load(ours, path, token, args.connections, args.seconds))
            theirs = asyncio.run(load(peer, path, token, args.connections, args.seconds))
            ratio = mine.rate / theirs.rate if theirs.rate else float("nan")
            met_ratio = "met" if ratio >= TARGET_RATIO else "NOT met"
            met_p99 = "met" if mine.p99_ms < TARGET_P99_MS else "NOT met"
            print(f"GET {path}", flush=True)
            print(f"  roomguard          {mine.text()}")
            print(f"  bare FastAPI peer  {theirs.text()}")
            print(
                f"  ratio {ratio:.2f}x (target ≥ {TARGET_RATIO}x: {met_ratio}); "
                f"p99 {mine.p99_ms:.1f} ms (target < {TARGET_P99_MS:g} ms: {met_p99})",
                flush=True,
            )
            results.append((path, mine, theirs))
    finally:
        for proc in procs:
            _stop(proc)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> None:
    """Command line: the benchmark, or (internal) one of its servers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="Load per path and server.")
    parser.add_argument("--connections", type=int, default=16, help="Concurrent connections.")
    parser.add_argument("--path", default=READINGS, help="The JSON endpoint to measure beside GET /.")
    parser.add_argument("--keep", help="Keep the records database and the servers' logs in this folder.")
    parser.add_argument("--serve", choices=["ours", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "ours":
        serve_ours(Path(args.keep), args.port)
    elif args.serve == "peer":
        serve_peer(Path(args.keep), args.port)
    else:
        run(args)


if __name__ == "__main__":
    main()
