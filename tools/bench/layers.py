"""What a generated service's layers cost, side by side with the raw clients and Kafka's own Java producer: the
template's `make bench`.

    python -m tools.bench.layers [--events 20000] [--backlog 200000] [--seconds 5] [--repetitions 3] [--out build/bench]

Renders the default (at-least-once) and exactly-once variants, starts a local stack of its own on 127.0.0.1 with
the launcher, and runs each project's own bench (`python -m tests.bench`: publish, HTTP ingest, consumers, serde,
scale-out) on it, plus Kafka's `ProducerPerformance` (kafka-tools from Maven Central, acks=all, idempotent, the
service's record size) as the ceiling. Prints a table, writes bench.json and draws bench.png into --out; stops the
stack. Needs uv, and wrk for the HTTP rows (`apt-get install -y wrk`). Prints figures; asserts nothing.
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


def prepared(variant: str, root: Path) -> Path:
    from tools.render import render, variant_answers

    project = render(variant_answers(variant), root / variant)
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


def ceiling(stack: dict[str, str], record_bytes: int, events: int, repetitions: int, partitions: int) -> dict[str, Any]:
    """Kafka's own producer at full speed: acks=all, idempotent, the service's linger and record size."""
    from tools.stack import kafka_stack

    libs = kafka_stack.resolve_jars("kafka-tools-4.3.1", [KAFKA_TOOLS])
    java = kafka_stack.find_java()
    bootstrap = stack["KAFKA_BOOTSTRAP_SERVERS"]
    asyncio.run(create_topic(bootstrap, CEILING_TOPIC, partitions))
    command = [java, "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance", "--topic", CEILING_TOPIC]
    command += ["--num-records", str(events), "--record-size", str(record_bytes), "--throughput", "-1"]
    command += ["--bootstrap-server", bootstrap, "--warmup-records", str(min(events // 10, 10_000))]
    command += ["--command-property", "acks=all", "enable.idempotence=true", "linger.ms=5"]
    repeats = []
    for _ in range(repetitions):
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        # The last summary line covers the measured records (after the warm-up ones).
        found = [match.groupdict() for match in RESULT.finditer(out)]
        if not found:
            raise RuntimeError(f"no summary in ProducerPerformance's output:\n{out}")
        result = found[-1]
        repeats.append(
            {"events_per_second": float(result["rate"]), "p50_ms": float(result["p50"]), "p99_ms": float(result["p99"])}
        )
    return {
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


def ratio(rows: list[dict[str, Any]], row: dict[str, Any]) -> float | None:
    base = next((r for r in rows if r["name"] == row["baseline"]), None)
    if base is None or not base["events_per_second"]:
        return None
    return float(row["events_per_second"]) / float(base["events_per_second"])


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: float | None, digits: int = 2) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    lines = [
        "| group | path | events/s | p50 ms | p99 ms | CPU µs/event | ratio | of | goal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        share = ratio(rows, row)
        goal = f">= {row['goal']:g}x" if row.get("goal") is not None else ""
        verdict = "" if share is None or row.get("goal") is None else (" met" if share >= row["goal"] else " missed")
        lines.append(
            f"| {row['group']} | {row['name']} | {row['events_per_second']:,.0f} | {cell(row['p50_ms'])} "
            f"| {cell(row['p99_ms'])} | {cell(row.get('cpu_us_per_event'), 0)} "
            f"| {'' if share is None else f'{share:.2f}x'} | {row['baseline'] or ''} "
            f"| {goal}{verdict} |"
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
    figure = plt.figure(figsize=(13, 8.5), layout="constrained")
    grid = figure.add_gridspec(2, 2, height_ratios=[1.35, 1])
    bars = figure.add_subplot(grid[0, :])
    labels = [f"{r['group']}: {r['name']}" for r in compared]
    colours = ["#9e9e9e" if r["baseline"] is None else "#1f77b4" for r in compared]
    positions = range(len(compared))
    bars.barh(positions, [r["events_per_second"] for r in compared], color=colours)
    bars.set_yticks(list(positions), labels)
    bars.invert_yaxis()
    bars.set_xscale("log")
    bars.set_xlabel("events/s (log scale; grey: the baseline of the blue bar(s) below it)")
    for position, row in zip(positions, compared, strict=True):
        share = ratio(rows, row)
        text = f"{row['events_per_second']:,.0f}/s"
        if share is not None:
            text += f"  {share:.2f}x" + (f" (goal {row['goal']:g}x)" if row.get("goal") is not None else "")
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
    common = ["--events", str(args.events), "--seconds", str(args.seconds), "--repetitions", str(args.repetitions)]
    default_options = ["--backlog", str(args.backlog), *args.default_options]
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch, LoadWatch().running() as load:
        root = Path(scratch)
        print("rendering the default and exactly-once services ...", file=sys.stderr, flush=True)
        default = prepared("default", root)
        exactly_once = prepared("exactly-once", root)
        state_dir = root / "stack"
        try:
            stack = kafka_stack.up(state_dir, ["kafka", "registry"])
            print("default (at-least-once) service ...", file=sys.stderr, flush=True)
            rows = project_bench(default, stack, [*common, *default_options], root / "default.json")
            print("exactly-once service ...", file=sys.stderr, flush=True)
            eos_options = [*common, "--only", "consume"]
            eos = project_bench(exactly_once, stack, eos_options, root / "exactly-once.json")
            print("Kafka's ProducerPerformance ...", file=sys.stderr, flush=True)
            record = next(r for r in rows if r["name"] == "aiokafka producer")["notes"]["record_bytes"]
            top = ceiling(stack, record, args.ceiling_events, args.repetitions, 6)
        finally:
            kafka_stack.down(state_dir)
    for row in rows:
        if row["name"] == "aiokafka producer":
            row["baseline"] = CEILING
    consume = [i for i, r in enumerate(rows) if r["group"] == "consume"]
    at = consume[-1] + 1 if consume else len(rows)
    rows = [top, *rows[:at], *eos, *rows[at:]]
    meta = {
        "machine": machine(load.samples),
        "repetitions": args.repetitions,
        "events": args.events,
        "seconds_per_http_run": args.seconds,
        "wall_seconds": round(time.monotonic() - started),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out / "bench.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    chart(rows, meta, out / "bench.png")
    print(table(rows))
    load_avg = meta["machine"]["load_average_1m"]
    print(
        f"\n{meta['machine']['nproc']} cores, {meta['machine']['cpu']}; load average {load_avg['min']:.2f} to "
        f"{load_avg['max']:.2f} (mean {load_avg['mean']:.2f}); {meta['wall_seconds']} s in all. "
        f"Wrote {out / 'bench.json'} and {out / 'bench.png'}."
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per publish and consume run")
    parser.add_argument("--ceiling-events", type=int, default=200_000, help="records per ProducerPerformance run")
    parser.add_argument("--backlog", type=int, default=200_000, help="events waiting when the scale-out workers start")
    parser.add_argument("--seconds", type=float, default=5, help="length of each HTTP load run")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--out", default="build/bench", help="where bench.json and bench.png go")
    parser.add_argument(
        "--default-options", nargs=argparse.REMAINDER, default=[], help="more options for the default project's bench"
    )
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
