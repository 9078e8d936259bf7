"""HTTP ingest: POST on the service next to a bare FastAPI endpoint that does the same aiokafka send, both served
by uvicorn in a process of their own, loaded by wrk (https://github.com/wg/wrk; Debian: `apt-get install wrk`).

With two cores or more the server is pinned to the first and wrk to the second (taskset), so the load generator
does not take the server's CPU. Each request carries its own key, so the events spread over the partitions."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request

from agent_ops.events.catalog import Topic
from agent_ops.settings import Settings
from tests.samples import ROUTES, sample_event

from .measure import Row, Run, row
from .producer import raw_producer

KEY = "bench-key-placeholder"

# Prints what the bench reads back; `request` gives every request a key of its own.
WRK_SCRIPT = """
local counter = 0
local head, tail = %s, %s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, head .. "k" .. counter .. tail)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "failed": %%d, "p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout + e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def bare_app() -> FastAPI:
    """The hand-written baseline: take the JSON body and send it with aiokafka, answering once it is acknowledged."""
    settings = Settings()
    topic_name = os.environ["BENCH_TOPIC"]
    key_field = os.environ["BENCH_KEY_FIELD"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer = raw_producer(settings)
        await producer.start()
        app.state.producer = producer
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post(os.environ["BENCH_ROUTE"], status_code=202)
    async def publish(request: Request) -> dict[str, Any]:
        body = await request.body()
        key = str(json.loads(body)[key_field]).encode()
        delivery = await request.app.state.producer.send(topic_name, body, key=key)
        metadata = await delivery
        return {"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset}

    return app


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("the HTTP rows need wrk: `apt-get install -y wrk` (Debian, Ubuntu) or `brew install wrk`")
    return wrk


def pinned(core: int) -> list[str]:
    """taskset to `core` when the machine has a core for the server and one for the load generator."""
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)]
    return []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(factory: str, env: dict[str, str]) -> Iterator["Server"]:
    """uvicorn serving `factory` on a free port, pinned to the first core, as the Dockerfile runs it: with its
    access log (a line per request, here to /dev/null)."""
    port = free_port()
    command = [*pinned(0), sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    cwd = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(command, env=os.environ | env, cwd=cwd, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/openapi.json", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{factory} did not start serving") from None
                time.sleep(0.2)
        yield Server(url, server.pid)
    finally:
        server.terminate()
        server.wait(30)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User and system CPU time of the server process so far (Linux)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body_parts(topic: Topic) -> tuple[str, str]:
    """A valid POST body of the topic's first event type, split around its key value."""
    event = sample_event(topic, key=KEY)
    body = event.model_dump(mode="json", exclude={"event_id", "occurred_at"})
    head, tail = json.dumps(body).split(KEY)
    return head, tail


def load(server: Server, route: str, script: Path, clients: int, seconds: float) -> Run:
    """wrk with `clients` connections for `seconds`; fails on any error or non-2xx answer."""
    url = server.url + route
    cpu = server.cpu_seconds()
    command = [*pinned(1), require_wrk(), "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "10s"]
    out = subprocess.run([*command, "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    if result["failed"]:
        raise RuntimeError(f"{result['failed']} of {result['requests']} requests to {url} failed:\n{out}")
    percentiles = (result["p50_us"] / 1e6, result["p99_us"] / 1e6)
    cpu_seconds = server.cpu_seconds() - cpu
    return Run(result["requests"], result["duration_us"] / 1e6, percentiles=percentiles, cpu_seconds=cpu_seconds)


def server_env(settings: Settings, topic: Topic) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "CONSUMER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "BENCH_TOPIC": topic.name,
        "BENCH_KEY_FIELD": topic.key_field,
        "BENCH_ROUTE": ROUTES[topic.name],
    }


@contextmanager
def wrk_script(topic: Topic) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(WRK_SCRIPT % tuple(json.dumps(part) for part in body_parts(topic)))
        yield script


SERVICE = "agent_ops.main:create_app"
BARE = "tests.bench.ingest:bare_app"
BARE_NAME = "bare FastAPI + aiokafka"


def bench(settings: Settings, topic: Topic, clients: int, seconds: float, repetitions: int) -> list[Row]:
    """Both servers up at once, loaded in turn; a short warm-up each (the first request registers the schema)."""
    runs: dict[str, list[Run]] = {BARE: [], SERVICE: []}
    route = ROUTES[topic.name]
    with (
        wrk_script(topic) as script,
        served(BARE, server_env(settings, topic)) as bare,
        served(SERVICE, server_env(settings, topic)) as service,
    ):
        servers = {BARE: bare, SERVICE: service}
        for server in servers.values():
            load(server, route, script, clients, 1)
        for _ in range(repetitions):
            for factory, server in servers.items():
                runs[factory].append(load(server, route, script, clients, seconds))
    notes = {"clients": clients, "seconds": seconds}
    return [
        row("http ingest", BARE_NAME, runs[BARE], notes=notes),
        row(
            "http ingest",
            "service POST",
            runs[SERVICE],
            baseline=BARE_NAME,
            goal=0.7,
            notes=notes,
        ),
    ]


def sweep(settings: Settings, topic: Topic, clients: list[int], seconds: float) -> list[Row]:
    """The service's POST under 1, 16, 64, ... concurrent clients: how latency grows with load."""
    rows = []
    with wrk_script(topic) as script, served(SERVICE, server_env(settings, topic)) as service:
        route = ROUTES[topic.name]
        load(service, route, script, clients[0], 1)
        for count in clients:
            rows.append(row("http clients", f"{count} clients", [load(service, route, script, count, seconds)]))
    return rows
