"""What a generated service's layers cost, side by side with the raw clients and Kafka's own Java producer: the
template's `make bench`.

    python -m tools.bench.layers [--events 20000] [--backlog 200000] [--seconds 5] [--repetitions 3] [--out build/bench]

Renders the default (at-least-once) and exactly-once variants on each client answer (aiokafka, and librdkafka
through confluent-kafka), starts a local stack of its own on 127.0.0.1 with the launcher, and runs each project's
own bench (`python -m tests.bench`: publish, HTTP ingest, consumers; serde and scale-out on aiokafka's default) on
it, plus Kafka's `ProducerPerformance` (kafka-tools from Maven Central, acks=all, idempotent, the service's record
size) as the ceiling; and, with librdkafka, the task-queue variant's queue rows (tasks per second of 1, 2, 4 and 8
workers on its two partitions, tasks of --task-ms, the goal 8 workers above 3x one). A project's bench measures the
service on its own client next to that raw client; this tool compares the clients. It runs in rounds, every project
and the ceiling once a round, so each ratio is a median of pairs measured side by side (the spread, min to max,
beside it). Prints a table, writes bench.json and draws
bench.png into --out; stops the stack. Needs uv, and wrk for the HTTP rows (`apt-get install -y wrk`). Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KAFKA_TOOLS = "org.apache.kafka:kafka-tools:4.3.1"
CEILING_TOPIC = "bench.ceiling"
CEILING = "Java ProducerPerformance"
RESULT = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec .*?, (?P<avg>[\d.]+) ms avg latency, "
    r"(?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th"
)


class LoadWatch:
    """The machine's 1-minute load average, sampled in the background while the bench runs."""

    def __init__(self, every_seconds: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(every_seconds,), daemon=True)

    def _watch(self, every_seconds: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every_seconds)

    @contextmanager
    def running(self) -> Iterator[LoadWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def machine(load: list[float]) -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "load_average_1m": {
            "min": min(load, default=0.0),
            "mean": statistics.mean(load) if load else 0.0,
            "max": max(load, default=0.0),
        },
    }


CLIENTS = {"aiokafka": "aiokafka", "librdkafka": "confluent-kafka"}
"""The rows' client names, and the `kafka_client` answer of each."""


def prepared(variant: str, client: str, root: Path) -> Path:
    from tools.render import render, variant_answers

    answers = variant_answers(variant) | {"kafka_client": CLIENTS[client]}
    project = render(answers, root / f"{variant}-{client}")
    subprocess.run(["uv", "sync", "-q"], cwd=project, check=True, env=project_env({}))
    return project


def project_env(stack: dict[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    return env | stack


def project_bench(project: Path, stack: dict[str, str], options: list[str], out: Path) -> list[dict[str, Any]]:
    command = [str(project / ".venv" / "bin" / "python"), "-m", "tests.bench", *options, "--json", str(out)]
    subprocess.run(command, cwd=project, env=project_env(stack), check=True, stdout=subprocess.DEVNULL)
    rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


def ceiling_once(stack: dict[str, str], record_bytes: int, events: int) -> dict[str, float]:
    """Kafka's own producer at full speed, one run: acks=all, idempotent, the service's linger and record size."""
    from tools.stack import kafka_stack

    libs = kafka_stack.resolve_jars("kafka-tools-4.3.1", [KAFKA_TOOLS])
    java = kafka_stack.find_java()
    bootstrap = stack["KAFKA_BOOTSTRAP_SERVERS"]
    command = [java, "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance", "--topic", CEILING_TOPIC]
    command += ["--num-records", str(events), "--record-size", str(record_bytes), "--throughput", "-1"]
    command += ["--bootstrap-server", bootstrap, "--warmup-records", str(min(events // 10, 10_000))]
    command += ["--command-property", "acks=all", "enable.idempotence=true", "linger.ms=5"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    # The last summary line covers the measured records (after the warm-up ones).
    found = [match.groupdict() for match in RESULT.finditer(out)]
    if not found:
        raise RuntimeError(f"no summary in ProducerPerformance's output:\n{out}")
    result = found[-1]
    return {"events_per_second": float(result["rate"]), "p50_ms": float(result["p50"]), "p99_ms": float(result["p99"])}


def ceiling_row(repeats: list[dict[str, float]], record_bytes: int, events: int) -> dict[str, Any]:
    return {
        "client": "java",
        "group": "publish",
        "name": CEILING,
        "events_per_second": statistics.median(r["events_per_second"] for r in repeats),
        "p50_ms": statistics.median(r["p50_ms"] for r in repeats),
        "p99_ms": statistics.median(r["p99_ms"] for r in repeats),
        "cpu_us_per_event": None,
        "repetitions": repeats,
        "baseline": None,
        "goal": None,
        "notes": {"record_bytes": record_bytes, "events": events, "kafka_tools": KAFKA_TOOLS.rsplit(":", 1)[1]},
    }


def merged(rounds: list[list[dict[str, Any]]], client: str) -> list[dict[str, Any]]:
    """One row per path of a project's rounds (each run with one repetition per row): every round's repetition,
    the medians over them."""
    rows: dict[str, dict[str, Any]] = {}
    for measured in rounds:
        for row in measured:
            kept = rows.setdefault(row["name"], row | {"client": client, "repetitions": []})
            kept["repetitions"] += row["repetitions"]
    for row in rows.values():
        for key in ("events_per_second", "p50_ms", "p99_ms", "cpu_us_per_event"):
            values = [value for rep in row["repetitions"] if (value := rep.get(key)) is not None]
            row[key] = statistics.median(values) if values else None
    return list(rows.values())


def paired(row: dict[str, Any], base: dict[str, Any]) -> list[float]:
    """`row`'s rate over `base`'s, round by round (the two were measured side by side)."""
    return [
        float(mine["events_per_second"]) / float(theirs["events_per_second"])
        for mine, theirs in zip(row["repetitions"], base["repetitions"], strict=False)
        if theirs["events_per_second"]
    ]


def baseline_of(rows: list[dict[str, Any]], row: dict[str, Any]) -> dict[str, Any] | None:
    if row["baseline"] is None:
        return None
    same_client = [r for r in rows if r["name"] == row["baseline"] and r.get("client") == row.get("client")]
    return next(iter(same_client), None) or next((r for r in rows if r["name"] == row["baseline"]), None)


def ratio(rows: list[dict[str, Any]], row: dict[str, Any]) -> list[float] | None:
    base = baseline_of(rows, row)
    if base is None:
        return None
    return paired(row, base) or None


def spread(ratios: list[float] | None) -> str:
    if not ratios:
        return ""
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def verdict(ratios: list[float] | None, goal: float | None) -> str:
    if goal is None:
        return ""
    met = "" if not ratios else (" met" if statistics.median(ratios) >= goal else " missed")
    return f">= {goal:g}x{met}"


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: float | None, digits: int = 2) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    lines = [
        "| client | group | path | events/s | p50 ms | p99 ms | CPU µs/event | ratio, median (min-max) | of | goal |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        ratios = ratio(rows, row)
        lines.append(
            f"| {row.get('client', '')} | {row['group']} | {row['name']} | {row['events_per_second']:,.0f} "
            f"| {cell(row['p50_ms'])} | {cell(row['p99_ms'])} | {cell(row.get('cpu_us_per_event'), 0)} "
            f"| {spread(ratios)} | {row['baseline'] or ''} | {verdict(ratios, row.get('goal'))} |"
        )
    return "\n".join(lines)


PATHS = {
    "publish path": ("service EventPublisher", "{raw} producer"),
    "HTTP ingest": ("service POST", "bare FastAPI + {raw}"),
    "at-least-once runner": ("service runner (at-least-once)", "{raw} loop, commit after"),
    "exactly-once runner": ("service transactional runner", "{raw} idempotent loop"),
}
FASTER = {"publish path": 2.5, "exactly-once runner": 1.5}
"""How much faster the service is to be on librdkafka than on aiokafka, where a goal says so."""


def comparisons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """librdkafka against aiokafka, round by round: the service's rate, and its share of its raw client's (the
    service's overhead is to be no worse on librdkafka)."""
    found = {(row.get("client"), row["name"]): row for row in rows}
    compared = []
    for path, (service, raw) in PATHS.items():
        ours = {client: found.get((client, service)) for client in CLIENTS}
        raws = {client: found.get((client, raw.format(raw=client))) for client in CLIENTS}
        if ours["aiokafka"] is None or ours["librdkafka"] is None:
            continue
        compared.append(
            {
                "path": path,
                "what": "service, librdkafka over aiokafka",
                "ratios": paired(ours["librdkafka"], ours["aiokafka"]),
                "goal": FASTER.get(path),
            }
        )
        if raws["aiokafka"] is not None and raws["librdkafka"] is not None:
            shares = {client: paired(ours[client], raws[client]) for client in CLIENTS}  # type: ignore[arg-type]
            relative = [lib / aio for lib, aio in zip(shares["librdkafka"], shares["aiokafka"], strict=False) if aio]
            compared.append(
                {
                    "path": path,
                    "what": "share of its raw client, librdkafka over aiokafka",
                    "ratios": relative,
                    "goal": 1.0,
                }
            )
    return compared


def comparison_table(compared: list[dict[str, Any]]) -> str:
    lines = ["| path | compared | ratio, median (min-max) | goal |", "| --- | --- | ---: | ---: |"]
    for entry in compared:
        lines.append(
            f"| {entry['path']} | {entry['what']} | {spread(entry['ratios'])} "
            f"| {verdict(entry['ratios'], entry['goal'])} |"
        )
    return "\n".join(lines)


def chart(rows: list[dict[str, Any]], meta: dict[str, Any], path: Path) -> None:
    """Three panels: each path next to its baseline (events/s, ratio written on the bar), events/s by worker
    processes, and HTTP latency by concurrent clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    compared = [r for r in rows if r["group"] not in ("worker processes", "http clients", "serde")]
    workers = [r for r in rows if r["group"] == "worker processes"]
    clients = [r for r in rows if r["group"] == "http clients"]
    figure = plt.figure(figsize=(13, 11), layout="constrained")
    grid = figure.add_gridspec(2, 2, height_ratios=[1.35, 1])
    bars = figure.add_subplot(grid[0, :])
    labels = [f"{r.get('client', '')} {r['group']}: {r['name']}" for r in compared]
    colours = ["#9e9e9e" if r["baseline"] is None else "#1f77b4" for r in compared]
    positions = range(len(compared))
    bars.barh(positions, [r["events_per_second"] for r in compared], color=colours)
    bars.set_yticks(list(positions), labels)
    bars.invert_yaxis()
    bars.set_xscale("log")
    bars.set_xlabel("events/s (log scale; grey: the baseline of the blue bar(s) below it)")
    for position, row in zip(positions, compared, strict=True):
        ratios = ratio(rows, row)
        text = f"{row['events_per_second']:,.0f}/s"
        if ratios:
            text += f"  {spread(ratios)}" + (f" (goal {row['goal']:g}x)" if row.get("goal") is not None else "")
        bars.text(row["events_per_second"] * 1.05, position, text, va="center", fontsize=9)
    bars.set_xlim(right=max((r["events_per_second"] for r in compared), default=1) * 12)
    load = meta["machine"]["load_average_1m"]
    bars.set_title(
        f"Service paths vs raw clients, median of {meta['repetitions']} runs: {meta['machine']['nproc']} cores "
        f"({meta['machine']['cpu']}), load average {load['min']:.1f}-{load['max']:.1f} during the run"
    )
    scale = figure.add_subplot(grid[1, 0])
    scale.bar([str(r["notes"]["workers"]) for r in workers], [r["events_per_second"] for r in workers], color="#2ca02c")
    scale.set_xlabel(f"worker processes ({workers[0]['notes']['partitions'] if workers else '?'} partitions)")
    scale.set_ylabel("events/s")
    scale.set_title("At-least-once runner: scale-out")
    latency = figure.add_subplot(grid[1, 1])
    counts = [int(r["name"].split()[0]) for r in clients]
    latency.plot(counts, [r["p50_ms"] for r in clients], marker="o", label="p50")
    latency.plot(counts, [r["p99_ms"] for r in clients], marker="o", label="p99")
    latency.set_xscale("log", base=2)
    latency.set_yscale("log")
    latency.set_xticks(counts, [str(c) for c in counts])
    latency.set_xlabel("concurrent HTTP clients (wrk)")
    latency.set_ylabel("POST latency, ms")
    for count, row in zip(counts, clients, strict=True):
        latency.annotate(
            f"{row['events_per_second']:,.0f}/s",
            (count, row["p50_ms"]),
            fontsize=8,
            xytext=(4, -12),
            textcoords="offset points",
        )
    latency.legend()
    latency.set_title("Service POST latency as clients grow")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(args: argparse.Namespace) -> int:
    from tools.stack import kafka_stack

    if shutil.which("wrk") is None:
        print("make bench needs wrk for its HTTP rows: apt-get install -y wrk (Debian, Ubuntu)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    once = ["--events", str(args.events), "--seconds", str(args.seconds), "--repetitions", "1"]
    clients = args.clients.split(",")
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch, LoadWatch().running() as load:
        root = Path(scratch)
        print(f"rendering the default and exactly-once services on {', '.join(clients)} ...", file=sys.stderr)
        projects = {(variant, client): prepared(variant, client, root) for client in clients for variant in VARIANTS}
        # A queue topic needs librdkafka's share consumer: its variant renders with that client alone.
        queue = prepared(QUEUE_VARIANT, "librdkafka", root) if "librdkafka" in clients else None
        state_dir = root / "stack"
        rounds: dict[tuple[str, str], list[list[dict[str, Any]]]] = {project: [] for project in projects}
        ceilings: list[dict[str, float]] = []
        extra_queue: list[dict[str, Any]] = []
        try:
            stack = kafka_stack.up(state_dir, ["kafka", "registry"])
            asyncio.run(create_topic(stack["KAFKA_BOOTSTRAP_SERVERS"], CEILING_TOPIC, 6))
            if queue is not None:
                # First: the default service's bench writes to a topic of the same name and grows it to 12
                # partitions; the queue rows measure the variant's own 2.
                print("queue workers (the task-queue service on librdkafka) ...", file=sys.stderr, flush=True)
                tasks = ["--tasks-per-worker", str(args.tasks_per_worker), "--task-ms", str(args.task_ms)]
                queued = [*once[:-1], str(args.repetitions), "--only", "queue-workers", *tasks]
                measured = project_bench(queue, stack, queued, root / "queue.json")
                extra_queue = [row | {"client": "librdkafka"} for row in measured]
            record = 0
            for turn in range(args.repetitions):
                for (variant, client), project in projects.items():
                    print(f"round {turn + 1}: {variant} on {client} ...", file=sys.stderr, flush=True)
                    only = VARIANTS[variant]
                    measured = project_bench(project, stack, [*once, "--only", only], root / f"{variant}-{client}.json")
                    rounds[variant, client].append(measured)
                    record = record or next(r for r in measured if r["group"] == "publish")["notes"]["record_bytes"]
                print(f"round {turn + 1}: Kafka's ProducerPerformance ...", file=sys.stderr, flush=True)
                ceilings.append(ceiling_once(stack, record, args.ceiling_events))
            print("serde, HTTP clients and scale-out (aiokafka's default service) ...", file=sys.stderr, flush=True)
            rest = [
                *once[:-1],
                str(args.repetitions),
                "--backlog",
                str(args.backlog),
                "--only",
                "serde,http-clients,workers",
            ]
            extra = project_bench(projects["default", clients[0]], stack, rest, root / "rest.json")
        finally:
            kafka_stack.down(state_dir)
    rows = [ceiling_row(ceilings, record, args.ceiling_events)]
    for (_, client), runs in rounds.items():
        rows += merged(runs, client)
    rows += [row | {"client": clients[0]} for row in extra]
    rows += extra_queue
    for row in rows:
        if row["group"] == "publish" and row["name"].endswith(" producer") and row["client"] != "java":
            row["baseline"] = CEILING
    compared = comparisons(rows)
    meta = {
        "machine": machine(load.samples),
        "repetitions": args.repetitions,
        "events": args.events,
        "seconds_per_http_run": args.seconds,
        "wall_seconds": round(time.monotonic() - started),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    written = {"meta": meta, "rows": rows, "comparisons": compared}
    (out / "bench.json").write_text(json.dumps(written, indent=2) + "\n")
    chart(rows, meta, out / "bench.png")
    print(table(rows))
    print()
    print(comparison_table(compared))
    load_avg = meta["machine"]["load_average_1m"]
    print(
        f"\n{meta['machine']['nproc']} cores, {meta['machine']['cpu']}; load average {load_avg['min']:.2f} to "
        f"{load_avg['max']:.2f} (mean {load_avg['mean']:.2f}); {args.repetitions} rounds; "
        f"{meta['wall_seconds']} s in all. Wrote {out / 'bench.json'} and {out / 'bench.png'}."
    )
    return 0


VARIANTS = {"default": "publish,http,consume", "exactly-once": "consume"}
"""The rows each variant's bench measures once a round."""
QUEUE_VARIANT = "task-queue"
"""The variant whose bench measures the queue rows (on librdkafka)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per publish and consume run")
    parser.add_argument("--ceiling-events", type=int, default=200_000, help="records per ProducerPerformance run")
    parser.add_argument("--backlog", type=int, default=200_000, help="events waiting when the scale-out workers start")
    parser.add_argument("--seconds", type=float, default=5, help="length of each HTTP load run")
    parser.add_argument("--tasks-per-worker", type=int, default=40, help="tasks of a queue row, per worker")
    parser.add_argument("--task-ms", type=int, default=100, help="how long a queue row's task takes its handler")
    parser.add_argument("--repetitions", type=int, default=5, help="rounds; every ratio is the median of as many")
    parser.add_argument("--clients", default="aiokafka,librdkafka", help=f"of {','.join(CLIENTS)}")
    parser.add_argument("--out", default="build/bench", help="where bench.json and bench.png go")
    parser.add_argument(
        "--default-options", nargs=argparse.REMAINDER, default=[], help="more options for the default project's bench"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
