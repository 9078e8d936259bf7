"""The `outbox` and `postgres restart` chaos rows against the data-pipelines service, run with that project's own
interpreter (cwd = project):

    .venv/bin/python .../tools/chaos/patterns/outbox/service.py '{"kind": "outbox" | "postgres-restart", ...}'

The service is the project's own: its migrations applied and its connectors registered by its own commands
(`python -m <package> migrate`, `... connect register`), its API served by uvicorn (POST writes the domain row and
the outbox row in one transaction), its consumer a `worker` process whose handler also records a side effect in the
processed-id transaction (tools/chaos/slow_worker.py, 0 ms). Clients POST events and send the same event again
(same event_id) until it is answered 202, as a client does.

outbox: the service (API and worker) killed with SIGKILL `service_kills` times and the Connect worker `connect_kills`
times, each at its share of the requests answered 202, the Connect kills only on a worker that has streamed since
it started; the last tenth of the requests only once every fault was done.
postgres restart: PostgreSQL stopped once a third of the requests were answered, for `down_s` seconds: readiness must
say 503 and a POST must be answered 503 within its bound while it is down.

Then every event answered 202 must be on its topic: read by librdkafka, each value decoded by confluent-kafka's
AvroDeserializer from the registry (the event id read from the event itself, and compared with the event_id
header), and each must have exactly one side effect. Prints one JSON result line.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())  # the project's tests.samples builds valid events of its spec
sys.path.insert(0, os.path.join(os.getcwd(), "scripts"))  # and its launcher stops and starts pieces

import kafka_stack
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError
from confluent_kafka import TopicPartition as Partition
from confluent_kafka.serialization import MessageField, SerializationContext

# The generated project's dependencies, not this repository's: imported by name, so that its type check passes here.
asyncpg: Any = importlib.import_module("asyncpg")
httpx: Any = importlib.import_module("httpx")
registry_client: Any = importlib.import_module("confluent_kafka.schema_registry")
avro: Any = importlib.import_module("confluent_kafka.schema_registry.avro")

SLOW_WORKER = Path(__file__).resolve().parents[2] / "slow_worker.py"


def log(message: str) -> None:
    print(f"    [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_command(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    log(f"{what}: {result.stdout.strip().splitlines()[-1] if result.stdout.strip() else 'ok'}")


class Service:
    """The project's API (uvicorn, no consumer) and its worker, started, killed with SIGKILL and started again."""

    def __init__(self, package: str, env: dict[str, str], workdir: Path, group: str, topic: str) -> None:
        self.package = package
        self.topic = topic
        self.port = kafka_stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.workdir = workdir
        self.group = group
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0
        self.kills = 0
        self.crashes = 0

    def commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        api = [sys.executable, "-m", "uvicorn", "--factory", f"{self.package}.main:create_app"]
        return {
            "api": (
                [*api, "--host", "127.0.0.1", "--port", str(self.port)],
                {"CONSUMER_ENABLED": "false", "METRICS_PORT": str(kafka_stack.free_port())},
            ),
            "worker": (
                [sys.executable, str(SLOW_WORKER), self.package],
                {
                    "KAFKA_CONSUMER_GROUP": self.group,
                    "CONSUMER_SESSION_TIMEOUT_MS": "6000",
                    "CONSUMER_HEARTBEAT_INTERVAL_MS": "1000",
                    "CHAOS_HANDLER_MS": "0",
                    "CHAOS_SIDE_EFFECTS": "postgres",
                    # The outbox topic, consumed here as a consumer of another service would (if this one does not).
                    "CHAOS_ALSO_CONSUME": self.topic,
                    "PROCESSED_EVENTS_URL": self.env["DATABASE_URL"],
                    "METRICS_PORT": str(kafka_stack.free_port()),
                },
            ),
        }

    def start(self) -> None:
        self.started += 1
        for name, (command, extra) in self.commands().items():
            with (self.workdir / f"{name}-{self.started}.log").open("wb") as out:
                self.procs[name] = subprocess.Popen(
                    command,
                    env=self.env | {"LOG_LEVEL": "WARNING"} | extra,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )

    def kill(self) -> None:
        for proc in self.procs.values():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.kills += 1

    def restart_exited(self) -> None:
        if any(proc.poll() is not None for proc in self.procs.values()):
            log(f"a service process exited on its own ({[p.returncode for p in self.procs.values()]}); restarting")
            self.crashes += 1
            for proc in self.procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            self.start()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class ConnectWorker:
    """The stack's Kafka Connect worker: killed with SIGKILL, started again in a thread while the requests go on."""

    def __init__(self, state_dir: Path, url: str) -> None:
        self.state_dir = state_dir
        self.url = url
        self.kills = 0
        self.restarting: threading.Thread | None = None
        self.resumed_s: list[float] = []

    def connectors_running(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/connectors?expand=status", timeout=10) as response:
                connectors = json.loads(response.read())
        except OSError:
            return False
        return bool(connectors) and all(
            c["status"]["connector"]["state"] == "RUNNING"
            and c["status"]["tasks"]
            and all(t["state"] == "RUNNING" for t in c["status"]["tasks"])
            for c in connectors.values()
        )

    def kill(self) -> None:
        (worker,) = [p for p in kafka_stack.status(self.state_dir) if p.name == "connect"]
        os.killpg(worker.pid, signal.SIGKILL)
        while any(p.running for p in kafka_stack.status(self.state_dir) if p.name == "connect"):
            time.sleep(0.1)
        self.kills += 1
        self.restarting = threading.Thread(target=self.restart)
        self.restarting.start()

    def restart(self) -> None:
        began = time.monotonic()
        kafka_stack.start_piece(self.state_dir, "connect")
        while not self.connectors_running():
            time.sleep(0.5)
        self.resumed_s.append(round(time.monotonic() - began, 1))

    def ready(self) -> bool:
        return self.restarting is None or not self.restarting.is_alive()


class Clients:
    """Requests POSTed `concurrency` at a time, each sent again with the same event until answered 202."""

    def __init__(self, url: str, route: str) -> None:
        self.url = url
        self.route = route
        self.accepted: list[str] = []
        self.retries = 0
        self.unavailable = 0  # 503 answers
        self.slowest_503_s = 0.0
        self.errors: Counter[int] = Counter()

    async def post(self, events: list[Any], concurrency: int = 32) -> None:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:

            async def one(event: Any) -> None:
                body = event.model_dump(mode="json")
                async with gate:
                    while True:
                        began = time.monotonic()
                        try:
                            response = await client.post(self.route, json=body)
                        except httpx.HTTPError:
                            self.retries += 1
                            await asyncio.sleep(0.2)
                            continue
                        if response.status_code == 202:
                            self.accepted.append(str(event.event_id))
                            return
                        if response.status_code == 503:
                            self.unavailable += 1
                            self.slowest_503_s = max(self.slowest_503_s, time.monotonic() - began)
                        elif response.status_code >= 500:
                            # Retried as a client would, and reported: an outage must be a 503, never a 500.
                            self.errors[response.status_code] += 1
                        else:
                            raise RuntimeError(f"POST answered {response.status_code}: {response.text[:500]}")
                        self.retries += 1
                        await asyncio.sleep(0.2)

            await asyncio.gather(*(one(event) for event in events))


def read_events(bootstrap: str, registry: str, topic: str, quiet_s: float, wanted: set[str]) -> list[tuple[str, str]]:
    """(event id in the value, event_id header) of every record of `topic`, read by librdkafka from the start and
    decoded by confluent-kafka's AvroDeserializer with the registry, until `wanted` all came or nothing new arrived
    for `quiet_s`."""
    deserialize = avro.AvroDeserializer(registry_client.SchemaRegistryClient({"url": registry}))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-count-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    partitions = list(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
    consumer.assign([Partition(topic, p, OFFSET_BEGINNING) for p in partitions])
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    at_end: set[int] = set()
    last_new = time.monotonic()
    try:
        while not (len(at_end) == len(partitions) and wanted <= seen) and time.monotonic() - last_new < quiet_s:
            for message in consumer.consume(num_messages=5000, timeout=1.0):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition() or 0)
                    continue
                if error is not None:
                    raise RuntimeError(f"librdkafka: {error}")
                at_end.discard(message.partition() or 0)
                value = deserialize(message.value(), SerializationContext(topic, MessageField.VALUE))
                headers = dict(message.headers() or [])
                header = headers.get("event_id") or headers.get("event-id") or b""
                event_id = str(value["event_id"])
                found.append((event_id, header.decode() if isinstance(header, bytes) else header))
                seen.add(event_id)
                last_new = time.monotonic()
    finally:
        consumer.close()
    return found


async def side_effects(url: str, group: str) -> Counter[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT event_id::text AS id, count(*) AS n FROM chaos_side_effects WHERE consumer_group = $1 GROUP BY 1",
            group,
        )
    finally:
        await connection.close()
    return Counter({row["id"]: row["n"] for row in rows})


async def prepare(package: str, env: dict[str, str], group: str) -> None:
    """The service's deploy steps, by its own commands; the chaos side-effect table beside its tables."""
    run_command([sys.executable, "-m", package, "migrate"], env, "migrate")
    run_command([sys.executable, "-m", package, "connect", "register", "--wait", "180"], env, "connect register")
    connection = await asyncpg.connect(env["DATABASE_URL"])
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS chaos_side_effects (consumer_group text NOT NULL, event_id uuid NOT NULL)"
        )
        await connection.execute("DELETE FROM chaos_side_effects WHERE consumer_group = $1", group)
    finally:
        await connection.close()


async def until_ready(url: str, within: float = 120) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError(f"the service at {url} was not ready within {within:.0f} s")


async def run(args: dict[str, Any]) -> dict[str, Any]:
    package, n, kind = args["package"], args["inputs"], args["kind"]
    env = dict(os.environ) | args["settings"]
    state_dir = Path(args["state_dir"])
    workdir = Path(args["workdir"])
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    group = args["group"]
    samples = importlib.import_module("tests.samples")
    catalog = importlib.import_module(f"{package}.events.catalog")
    writer = importlib.import_module(f"{package}.patterns.outbox.writer")
    topic = catalog.topic_named(sorted(writer.OUTBOX_TOPICS)[0])
    route = samples.ROUTES[topic.name]

    await prepare(package, env, group)
    service = Service(package, env, workdir, group, "" if topic.consumed else topic.name)
    connect = ConnectWorker(state_dir, env["KAFKA_CONNECT_URL"])
    clients = Clients(service.url, route)
    events = [samples.sample_event(topic, key=f"chaos-{uuid.uuid4().hex[:12]}") for _ in range(n)]
    held = events[n - n // 10 :]
    flowing = events[: n - n // 10]
    plan = ["postgres"]
    if kind == "outbox":
        # Service and Connect kills in turn, the service's first: S C S C S for 3 and 2.
        kills = {"service": args.get("service_kills", 3), "connect": args.get("connect_kills", 2)}
        plan = [f for i in range(max(kills.values())) for f in ("service", "connect") if i < kills[f]]
    done: list[str] = []
    down: dict[str, Any] = {}
    service.start()
    try:
        await until_ready(service.url)
        t0 = time.monotonic()
        posting = asyncio.create_task(clients.post(flowing))
        try:
            while len(done) < len(plan):
                if posting.done():
                    await posting  # a client's error surfaces here
                service.restart_exited()
                fault = plan[len(done)]
                due = len(clients.accepted) >= (len(done) + 1) * len(flowing) / (len(plan) + 1) or posting.done()
                if due and fault == "service":
                    service.kill()
                    log(f"kill -9 #{service.kills} of the service at {len(clients.accepted)}/{n} accepted")
                    service.start()
                    done.append(fault)
                elif due and fault == "connect" and connect.ready():
                    connect.kill()
                    log(f"kill -9 #{connect.kills} of the Connect worker at {len(clients.accepted)}/{n} accepted")
                    done.append(fault)
                elif due and fault == "postgres":
                    down = await postgres_outage(state_dir, service.url, route, samples, topic, args.get("down_s", 8))
                    log(f"postgres stopped and started again at {len(clients.accepted)}/{n} accepted: {down}")
                    done.append(fault)
                await asyncio.sleep(0.2)
            await posting
            log(f"every planned fault done; the last {len(held)} requests")
            await clients.post(held)
            if connect.restarting is not None:
                await asyncio.to_thread(connect.restarting.join)
        finally:
            if not posting.done():
                posting.cancel()
        posting_s = time.monotonic() - t0
        accepted = set(clients.accepted)
        log(f"{len(accepted)} accepted in {posting_s:.0f} s; reading {topic.name}")
        found = await asyncio.to_thread(
            read_events, env["KAFKA_BOOTSTRAP_SERVERS"], env["SCHEMA_REGISTRY_URL"], topic.name, 120, accepted
        )
        ours = Counter(event_id for event_id, _ in found if event_id in accepted)
        log(f"{len(set(ours))} of them on {topic.name}; waiting for their side effects")
        effects: Counter[str] = Counter()
        quiet = reported = time.monotonic()
        while time.monotonic() - quiet < 120:
            now = await side_effects(env["DATABASE_URL"], group)
            if now != effects:
                effects, quiet = now, time.monotonic()
            if accepted <= set(effects):
                break
            if time.monotonic() - reported >= 30:
                log(f"side effects of {len(accepted & set(effects))} of {len(accepted)} so far")
                reported = time.monotonic()
            service.restart_exited()
            await asyncio.sleep(1)
    finally:
        await asyncio.to_thread(service.stop)
    result: dict[str, Any] = {
        "inputs": n,
        "accepted": len(accepted),
        "outputs": sum(ours.values()),
        "duplicates": sum(count - 1 for count in ours.values()),
        "lost": len(accepted - set(ours)),
        "header_mismatch": sum(1 for event_id, header in found if header != event_id),
        "effects": len(accepted & set(effects)),
        "effect_duplicates": sum(count - 1 for event_id, count in effects.items() if event_id in accepted),
        "kills": service.kills if kind == "outbox" else len(done),
        "connect_kills": connect.kills,
        "connect_resumed_s": connect.resumed_s,
        "crashes": service.crashes,
        "retries": clients.retries,
        "unavailable": clients.unavailable,
        "server_errors": dict(clients.errors),
        "seconds": round(posting_s, 1),
    }
    return result | down


async def postgres_outage(
    state_dir: Path, url: str, route: str, samples: Any, topic: Any, down_s: float
) -> dict[str, Any]:
    """Stop PostgreSQL, check what the service answers while it is down, start it again."""
    await asyncio.to_thread(kafka_stack.stop_piece, state_dir, "postgres")
    stopped = time.monotonic()
    readiness: list[int] = []
    probes: list[tuple[int, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() - stopped < down_s:
            readiness.append((await client.get("/health/ready")).status_code)
            probe = samples.sample_event(topic, key=f"probe-{uuid.uuid4().hex[:12]}")
            began = time.monotonic()
            answer = await client.post(route, json=probe.model_dump(mode="json"))
            probes.append((answer.status_code, time.monotonic() - began))
            await asyncio.sleep(0.5)
    await asyncio.to_thread(kafka_stack.start_piece, state_dir, "postgres")
    return {
        "down_s": round(time.monotonic() - stopped, 1),
        "ready_while_down": sorted(set(readiness)),
        "post_while_down": sorted({status for status, _ in probes}),
        "slowest_post_while_down_s": round(max((s for _, s in probes), default=0.0), 2),
        "probes": len(probes),
    }


def main() -> None:
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)


if __name__ == "__main__":
    main()
