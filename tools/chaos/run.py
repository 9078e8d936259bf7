"""`make chaos`: render the delivery-guarantee variants, install them, and break their processes on purpose
against a real local broker; print one row per scenario and exit non-zero if a guarantee did not hold.

    python -m tools.chaos.run [--client aiokafka|confluent-kafka|both] [--inputs 10000] [--kills 5]
                              [--lanes 2 [--lane K]] [--keep]

Every row that drives a service runs once per client answer (`--client`, both by default), on projects rendered with
that `kafka_client`, and is named with its client: "exactly-once (aiokafka)", "exactly-once (librdkafka)". Where a
row counts what the service wrote, a client of the other kind counts it too (librdkafka for an aiokafka service,
aiokafka for a librdkafka one; the exactly-once rows count with both). Rows run in lanes side by side, `--lanes` per
client (two by default), each lane on a local stack of its own, one row at a time: a row that restarts its broker or
kills its Connect worker disturbs no other. `--lane K` runs lane K alone (the first client's lanes come first):
`make test` runs each lane as a test of tests/chaos/test_chaos.py, beside the variant suites.

Scenarios (each on its own consumer groups, inputs published through the service's own EventPublisher, half as a
backlog before the workers start and the rest while they run; the last tenth only after every planned kill):
  exactly-once             worker killed -9 while processing: read_committed outputs exactly one per input,
                           counted by aiokafka and by librdkafka (confluent-kafka)
  exactly-once backlog     a new group's first worker on a backlog, no faults: one output per input, lag 0
  exactly-once rebalance   a second worker joins mid-stream, then kills: a real rebalance between live members
  exactly-once two groups  two groups on one input, each killed: each emits exactly one output per input
  at-least-once            same kills: nothing lost (duplicates reported); the durable processed-id store once per id
  at-least-once rebalance  two members, kills: nothing lost, side effects once per id
  at-most-once             same kills: nothing twice (losses reported)
  broker restart           the broker stopped and started during publishing, idempotent producer: none lost, none twice
  poison                   100 undecodable records among the inputs: 100 dead letters with their headers,
                           the rest processed
  at-least-once slow handlers  handlers of 200 ms, 16 at once per partition, two workers (one joining
                           mid-stream), kills, the PostgreSQL processed-id store shared by both: nothing lost,
                           each side effect (a row written in the id's transaction) once
  exactly-once slow handlers   the same handlers and kills under exactly-once: one output per input, counted by
                           aiokafka and by librdkafka
  transaction failures     exactly-once on three brokers of its own: a zombie fences the worker's producers 20 times
                           (every one planned, mid-batch or just before the next transaction), an output partition's
                           leader is stopped once: one output per input, final lag 0
  scaling slow handlers    handlers of 30 s, 8 at once per partition, events flowing; workers scaled 1 -> 3 -> 1
                           (two started, later stopped with SIGTERM), each step once the group is seen settled and a
                           call is in flight on every partition: handler calls abandoned and re-run per step, on the
                           partitions that stayed with their worker and on those that moved, counted from the
                           handlers' own journal; librdkafka must abandon and re-run none on an unmoved partition;
                           neither may lose an event (see tools/chaos/scaling_figures.py)
  queue tasks              librdkafka only: 5,000 agent tasks of 50 to 500 ms on a queue topic (a share group,
                           KIP-932), 4 workers on 2 partitions, each killed -9 in turn while a task is in flight
                           (every second kill on a failing task's last allowed delivery): every task's output once,
                           or its dead letter after the delivery limit (at once for a permanent failure), none lost,
                           counted by aiokafka; redeliveries counted from the handlers' journal
                           (see tools/chaos/queue_tasks.py)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from extensions.kafka_events_spec.patterns import ALL
from tools.chaos import clients, hostile, patterns, queue_figures, scaling_figures
from tools.render import VARIANTS_DIR, render, variant_answers
from tools.stack import kafka_stack

SCENARIO = Path(__file__).resolve().parent / "scenario.py"
HOSTILE = Path(__file__).resolve().parent / "hostile.py"

PATTERNS: list[patterns.Rows] = list(patterns.parts("rows").values())
"""Each pattern's rows of the table, from its folder (tools/chaos/patterns/<name>/rows.py)."""
PROJECTS = {name: variant for pattern in PATTERNS for name, variant in pattern.PROJECTS.items()}
"""The projects the patterns' rows drive, by name: the variant each renders."""
BORROWED = {name: lender for pattern in PATTERNS for name, lender in pattern.BORROWED.items()}
SCRIPTS = {
    "hostile": HOSTILE,
    "transaction-failures": SCENARIO.with_name("transaction_failures.py"),
    "scaling": SCENARIO.with_name("scaling.py"),
    "queue": SCENARIO.with_name("queue_tasks.py"),
    **{kind: script for pattern in PATTERNS for kind, script in pattern.SCRIPTS.items()},
}
"""The kinds run by a script of their own with the project's interpreter; the others run in SCENARIO."""
MODULES = {kind: module for pattern in PATTERNS for kind, module in pattern.MODULES.items()}
"""The kinds run in this repository's interpreter, without a project: the rows of a borrowed project."""


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def projects() -> dict[str, dict[str, Any]]:
    """Answers per project: one per guarantee, and the patterns' rows' own. At-least-once reuses the exactly-once
    variant's spec (it emits events to count), and at-most-once its variant without its patterns (a row counts the
    worker's outputs, not what a pattern adds to them); a pattern's project is left out when its variant is missing."""
    ledger = variant_answers("exactly-once")
    sampler = variant_answers("at-most-once")
    answers = {
        "exactly-once": ledger,
        "at-least-once": ledger | {"delivery_guarantee": "at-least-once"},
        "at-most-once": sampler | {"patterns": [], "spec": without_patterns(sampler["spec"])},
    }
    answers["task-queue"] = variant_answers("task-queue")
    return answers | {name: variant_answers(variant) for name, variant in PROJECTS.items() if name not in missing()}


ONLY_ON = {"task-queue": "confluent-kafka"}
"""Projects that render with one client answer only (a queue topic needs librdkafka's share consumer), and their
rows run on it alone."""


def client_projects(chosen: list[str]) -> dict[str, dict[str, Any]]:
    """Every project's answers with each chosen client it renders with, by the project's name for that client."""
    every = projects()
    return {
        clients.project(name, client): clients.answers(every[name], client)
        for client in chosen
        for name in every
        if ONLY_ON.get(name, client) == client
    }


def missing() -> set[str]:
    """The patterns' projects whose variant is not there (tests/variants/<variant>.yml)."""
    return {name for name, variant in PROJECTS.items() if not (VARIANTS_DIR / f"{variant}.yml").exists()}


def without_patterns(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` without the sections only a pattern reads (the answers refuse a section whose pattern is off)."""
    return {key: value for key, value in spec.items() if key not in {pattern.NAME for pattern in ALL}}


def prepare(name: str, answers: dict[str, Any], root: Path) -> tuple[Path, str]:
    """Render and install one service; returns its directory and its package name."""
    dest = render(answers, root / name)
    subprocess.run(["uv", "sync", "-q"], cwd=dest, check=True)
    stored = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    return dest, str(stored["package_name"])


def emitted_topic(answers: dict[str, Any]) -> str:
    """The topic the consumed topic's handlers emit to: where processing is counted."""
    return next(str(t["emits_to"]) for t in answers["spec"]["topics"] if t.get("emits_to"))


def scenario(project: Path | None, args: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """One row in a process of its own: in the generated project's interpreter, or, for the rows that drive the
    stack's Connect worker and PostgreSQL (no project), as a module of this repository."""
    if project is None:
        command = [sys.executable, "-m", MODULES[args["kind"]], json.dumps(args)]
    elif args["kind"] in SCRIPTS:
        command = [str(project / ".venv" / "bin" / "python"), str(SCRIPTS[args["kind"]]), json.dumps(args)]
    else:
        command = [str(project / ".venv" / "bin" / "python"), str(SCENARIO), json.dumps(args)]
    result = subprocess.run(
        command,
        cwd=project or Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        return {"error": f"scenario exited with {result.returncode}"}
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


SLOW = {"members": 2, "slow_handler_ms": 200, "concurrency": 16}
"""The slow-handler rows' workers: 200 ms per handler call, 16 records per partition at once, a second member."""


def with_postgres(state_dir: Path) -> str:
    """Add PostgreSQL to the running stack; its URL."""
    return kafka_stack.up(state_dir, ["registry", "postgres"])["DATABASE_URL"]


PIPELINES = {name for pattern in PATTERNS for name in pattern.ON_CONNECT}
"""Rows on the stack's PostgreSQL and Kafka Connect worker."""


def with_connect(state_dir: Path) -> dict[str, str]:
    """Add PostgreSQL and Kafka Connect (with Debezium) to the running stack; their settings."""
    return kafka_stack.up(state_dir, ["postgres", "connect"])


def verdict(name: str, guarantee: str, r: dict[str, Any], kills: int) -> list[str]:
    """The broken promises of one scenario's result (empty when it held)."""
    if "error" in r:
        return [r["error"]]
    client, name, guarantee = clients.client_of(name), clients.base(name), clients.unrendered(guarantee)
    broken = []
    if r.get("stalled"):
        broken.append("stalled")
    if r["kills"] < kills:
        broken.append(f"only {r['kills']} of {kills} faults")
    # A worker's exit is a fault, unless the row planned it (a pattern's row may).
    if r.get("crashes") and not any(name in pattern.PLANNED_CRASHES for pattern in PATTERNS):
        broken.append(f"{r['crashes']} worker exit(s) nobody caused")
    copies = r.get("groups", 1)
    if guarantee == "exactly-once":
        for client, counted in (("aiokafka", r), ("librdkafka", r.get("librdkafka", {}))):
            if counted.get("outputs") != r["inputs"] * copies or counted.get("duplicates") or counted.get("lost"):
                broken.append(f"not exactly once as {client} counts")
    if name.startswith("at-least-once") and (r["lost"] or r.get("effects") != r["inputs"]):
        broken.append("lost events or side effects")
    if r.get("effect_duplicates"):
        broken.append("duplicate side effects")
    if name.startswith("at-most-once") and r["duplicates"]:
        broken.append("duplicates")
    if name == "broker restart" and (r["lost"] or r["duplicates"]):
        broken.append("lost or duplicated across the restart")
    for pattern in PATTERNS:
        broken.extend(pattern.verdict(name, r))
    if name.startswith("hostile records"):
        broken.extend(hostile.verdict(r))
    if name == "scaling slow handlers":
        broken.extend(scaling_figures.verdict(r, client))
    if name == "queue tasks":
        broken.extend(queue_figures.verdict(r))
    if name == "transaction failures" and (
        r["final_lag"] or not r["leader_lost"] or r["fences"] != r["planned_fences"] or r["aborted"] < r["fences"]
    ):
        broken.append(
            f"final lag {r['final_lag']}, leader lost {r['leader_lost']}, {r['fences']} of {r['planned_fences']} "
            f"planned fences, {r['aborted']} aborted"
        )
    if name == "poison" and (
        r["dead_letters"] != r["poison"]
        or r["distinct_dead"] != r["poison"]
        or r["bad_headers"]
        or r["outputs"] != r["inputs"] - r["poison"]
        or r["duplicates"]
        or r["lost"]
    ):
        broken.append("dead letters or processing wrong")
    return broken


Row = patterns.Row
Result = tuple[str, str, dict[str, Any], list[str]]


def planned(args: argparse.Namespace, root: Path) -> list[Row]:
    """Every scenario, in table order: each row that drives a service once per chosen client, named with it (its
    project rendered with it); a row without a service of its own once. A row whose arguments hold "state_dir" drives
    its lane's stack itself."""
    chosen = clients.chosen(args.client)
    plans = {client: client_plan(args, root, client) for client in chosen}
    table: list[Row] = []
    for index, (name, project, extra) in enumerate(plans[chosen[0]]):
        if project in BORROWED:  # no service of its own, so no client to choose
            table.append((name, project, extra))
            continue
        for client in chosen:
            if ONLY_ON.get(project, client) != client:
                continue
            ours = plans[client][index][2] | {"client": client}
            table.append((clients.named(name, client), clients.project(project, client), ours))
    return table


def client_plan(args: argparse.Namespace, root: Path, client: str) -> list[Row]:
    """Every scenario for one client answer, by the names and projects the table knows without it."""
    root = root / clients.LABEL[client]
    kills = {"kind": "kills", "kills": args.kills, "poison": 0}
    half = args.inputs // 2
    shared = [
        ("exactly-once", "exactly-once", kills),
        # A fresh group's first member on a backlog, nothing broken: what is fetched while it sets up counts.
        ("exactly-once backlog", "exactly-once", kills | {"kills": 0, "backlog": 1.0, "inputs": half}),
        # A second member joins mid-stream: a real rebalance moves partitions between live processes.
        ("exactly-once rebalance", "exactly-once", kills | {"kills": 2, "members": 2, "inputs": half}),
        # Two groups on one input never fence each other: each emits one output per input.
        ("exactly-once two groups", "exactly-once", kills | {"kills": 2, "groups": 2, "inputs": half}),
        (
            "at-least-once",
            "at-least-once",
            kills | {"processed_db": str(root / "at-least-once-processed.sqlite")},
        ),
        (
            "at-least-once rebalance",
            "at-least-once",
            kills
            | {"kills": 2, "members": 2, "inputs": half, "processed_db": str(root / "rebalance-processed.sqlite")},
        ),
        ("at-most-once", "at-most-once", kills | {"drain_seconds": 3}),
        ("broker restart", "at-least-once", {"kind": "broker-restart", "kills": 1, "state_dir": "", "inputs": half}),
        ("poison", "at-least-once", {"kind": "kills", "kills": 0, "poison": args.poison}),
        # Handlers as slow as a language model's call, many at once per partition, a member joining mid-stream.
        (
            "at-least-once slow handlers",
            "at-least-once",
            kills | SLOW | {"inputs": half, "processed_url": "from the stack's postgres"},
        ),
        ("exactly-once slow handlers", "exactly-once", kills | SLOW | {"inputs": half}),
        # A zombie with the worker's transactional ids fences its producers mid-batch; an output leader is lost. On
        # three brokers of its own, under the lane's run directory.
        (
            "transaction failures",
            "exactly-once",
            {"kind": "transaction-failures", "kills": 20, "fences": 20, "brokers_dir": "brokers"},
        ),
        # Workers scaled 1 -> 3 -> 1 under handlers of 30 s: what each rebalance abandons and re-runs.
        ("scaling slow handlers", "at-least-once", {"kind": "scaling", "kills": 2}),
        # Agent tasks on a share group, half as many as the streams' inputs, workers killed -9 with a task in flight.
        ("queue tasks", "task-queue", {"kind": "queue", "kills": args.kills, "poison": 0, "inputs": half}),
        # Records no well-behaved producer writes, every kind on every partition (see tools/chaos/hostile.py).
        *[
            (f"hostile records {guarantee}", guarantee, {"kind": "hostile", "kills": 0, "inputs": half})
            for guarantee in ("exactly-once", "at-least-once", "at-most-once")
        ],
        # The same on the topics and consumers the patterns add, on the project with every pattern that adds some.
        (
            "hostile records patterns",
            with_every(patterns.names("hostile")),
            {"kind": "hostile", "kills": 0, "inputs": half, "patterns": patterns.names("hostile")},
        ),
    ]
    return with_pattern_rows(shared, args)


def with_every(wanted: list[str]) -> str:
    """The first project whose service has every pattern `wanted`."""
    found = [name for name, answers in projects().items() if set(wanted) <= set(answers.get("patterns", []))]
    if not found:
        raise SystemExit(f"no project has every pattern of {', '.join(wanted)}")
    return found[0]


def with_pattern_rows(table: list[Row], args: argparse.Namespace) -> list[Row]:
    """`table` with each pattern's rows after the row its module names (AFTER: a row of the table or of another
    pattern's)."""
    waiting = list(PATTERNS)
    while waiting:
        ready = [pattern for pattern in waiting if pattern.AFTER in {name for name, _, _ in table}]
        if not ready:
            raise SystemExit(f"no row {', '.join(pattern.AFTER for pattern in waiting)} for a pattern's rows to follow")
        for pattern in ready:
            after = next(index for index, (name, _, _) in enumerate(table) if name == pattern.AFTER)
            table[after + 1 : after + 1] = pattern.rows(args.inputs, args.kills)
        waiting = [pattern for pattern in waiting if pattern not in ready]
    return table


def described(plan: list[Row]) -> str:
    """This module's docstring, then the lines of the patterns' rows in table order."""
    lines = {name: doc for pattern in PATTERNS for name, doc in pattern.DOC.items()}
    names = dict.fromkeys(clients.base(name) for name, _, _ in plan)
    return str(__doc__) + "".join(lines.get(name, "") for name in names)


def needs_postgres(row: Row) -> bool:
    return clients.base(row[0]) in PIPELINES or "processed_url" in row[2]


WEIGHT = {
    "transaction failures": 3.0,
    "at-least-once slow handlers": 1.5,
    "scaling slow handlers": 2.5,
    "queue tasks": 3.0,
    **{name: weight for pattern in PATTERNS for name, weight in pattern.WEIGHT.items()},
}
"""Rough length of a row against an ordinary one, for splitting rows into lanes of about equal length."""


def client_lanes(runs: list[Row], lanes: int) -> list[list[Row]]:
    """`lanes` lanes for each client's rows, the first client's first (a row of no client goes with them)."""
    first = clients.client_of(runs[0][0]) if runs else None
    by_client: dict[str | None, list[Row]] = {}
    for row in runs:
        by_client.setdefault(clients.client_of(row[0]) or first, []).append(row)
    return [lane for rows in by_client.values() for lane in lanes_of(rows, lanes)]


def lanes_of(runs: list[Row], lanes: int) -> list[list[Row]]:
    """Split the rows into `lanes` lanes, each run one row at a time on a stack of its own. The rows on PostgreSQL
    and Kafka Connect share the first (only its stack starts them); every other row goes to the lane with the least
    planned work. A row that restarts its broker or kills its Connect worker disturbs no row of another lane."""
    if lanes <= 1:
        return [runs]
    split: list[list[Row]] = [[row for row in runs if needs_postgres(row)]] + [[] for _ in range(lanes - 1)]

    def work(lane: list[Row]) -> float:
        return sum(WEIGHT.get(clients.base(name), 1.0) for name, _, _ in lane)

    for row in runs:
        if not needs_postgres(row):
            min(split, key=work).append(row)
    return [lane for lane in split if lane]


class Lane:
    """A stack of its own, and the rows it runs one after another."""

    def __init__(self, index: int, rows: list[Row]) -> None:
        self.name = f"lane {index + 1}"
        self.rows = rows
        self.state_dir = Path(tempfile.mkdtemp(prefix=f"st-chaos-{index + 1}-"))
        self.settings: dict[str, str] = {}

    def up(self) -> None:
        try:
            self.settings = kafka_stack.up(self.state_dir, ["registry"])
        except kafka_stack.StackError as error:
            raise SystemExit(f"the local stack of {self.name} did not start: {error}") from error
        if any("processed_url" in extra for _, _, extra in self.rows):
            self.settings["DATABASE_URL"] = with_postgres(self.state_dir)
        if any(clients.base(name) in PIPELINES for name, _, _ in self.rows):
            self.settings |= with_connect(self.state_dir)

    def run(
        self, built: dict[str, tuple[Path | None, str]], args: argparse.Namespace, root: Path, output: str
    ) -> list[Result]:
        results: list[Result] = []
        env = dict(os.environ) | self.settings
        for attempt, (name, guarantee, extra) in enumerate(self.rows * args.repeat):
            if "processed_url" in extra:
                extra = extra | {"processed_url": self.settings["DATABASE_URL"]}
            if "state_dir" in extra:
                extra = extra | {"state_dir": str(self.state_dir)}
            if "brokers_dir" in extra:
                # Of this lane and attempt: lanes run side by side, and two sharing a stack would count each
                # other's inputs (and the first done would stop it under the other).
                brokers = f"{extra['brokers_dir']}-{self.name.replace(' ', '-')}-{attempt}"
                extra = extra | {"state_dir": str(root / brokers)}
            if clients.base(name) in PIPELINES:
                extra = extra | {"settings": self.settings}
            if guarantee in BORROWED and built.get(args.lenders[guarantee], (None, ""))[0] is not None:
                extra = extra | {"project": str(built[args.lenders[guarantee]][0])}
            project, package = built[guarantee]
            spec = {
                "package": package,
                "bootstrap": self.settings["KAFKA_BOOTSTRAP_SERVERS"],
                "group": f"chaos-{name.replace(' ', '-')}-{attempt}",
                "inputs": args.inputs,
                "output": output,
                "workdir": str(root / "logs" / f"{name}-{attempt}"),
            } | extra
            say(f"{self.name}: {name} ({guarantee}) ...")
            result = scenario(project, spec, env)
            result.setdefault("poison", extra.get("poison", 0))
            result.setdefault("inputs", spec["inputs"])
            if "client" in extra:
                result.setdefault("client", extra["client"])
            broken = verdict(name, guarantee, result, extra["kills"])
            results.append((name, guarantee, result, broken))
            say(f"{self.name}: {name}: {json.dumps(result)}{'  BROKEN: ' + ', '.join(broken) if broken else ''}")
        return results

    def down(self, keep: bool) -> None:
        kafka_stack.down(self.state_dir)
        if not keep:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def start_stacks(lanes: list[Lane]) -> None:
    for lane in lanes:
        lane.up()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--poison", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the rendered projects and logs")
    parser.add_argument("--only", default="", help="comma-separated scenario names to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated scenario names not to run")
    parser.add_argument("--repeat", type=int, default=1, help="run each scenario this many times")
    parser.add_argument(
        "--client", choices=clients.CHOICES, default="both", help="the services' kafka_client answer(s) (default: both)"
    )
    parser.add_argument(
        "--lanes", type=int, default=2, help="lanes per client: rows run side by side, each lane on a stack of its own"
    )
    parser.add_argument(
        "--lane", type=int, default=0, help="run only this lane (1 to the lanes' count), e.g. one per test process"
    )
    parser.description = described(planned(parser.parse_args([]), Path()))
    args = parser.parse_args(argv)
    if shutil.which("uv") is None:
        say("uv is not on PATH (pip install uv)")
        return 2
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="chaos-"))
    rows: list[Result] = []
    expected = 0
    lanes: list[Lane] = []
    try:
        output = emitted_topic(projects()["exactly-once"])
        plan = planned(args, root)
        # A row by its name, or by its name without the client: on every chosen client.
        only = {name.strip() for name in args.only.split(",") if name.strip()}
        skipped = {name.strip() for name in args.skip.split(",") if name.strip()}
        unknown = (only | skipped) - {name for name, _, _ in plan} - {clients.base(name) for name, _, _ in plan}
        if unknown:
            raise SystemExit(
                f"no scenario {', '.join(sorted(unknown))}; choose from {', '.join(n for n, _, _ in plan)}"
            )
        runs = [row for row in plan if not only or row[0] in only or clients.base(row[0]) in only]
        runs = [row for row in runs if row[0] not in skipped and clients.base(row[0]) not in skipped]
        first = clients.chosen(args.client)[0]
        args.lenders = {project: clients.project(lender, first) for project, lender in BORROWED.items()}
        absent = {clients.project(name, client) for name in missing() for client in clients.CLIENTS}
        if only & {name for name, project, _ in plan if project in absent}:
            raise SystemExit(
                f"the rows on {', '.join(sorted(missing()))} need their variants (missing in {VARIANTS_DIR})"
            )
        runs = [run for run in runs if run[1] not in absent]
        chosen = list(enumerate(client_lanes(runs, args.lanes)))
        if args.lane:
            if not 1 <= args.lane <= len(chosen):
                raise SystemExit(f"--lane {args.lane}: the rows make {len(chosen)} lane(s); choose 1 to {len(chosen)}")
            chosen = [chosen[args.lane - 1]]
            runs = chosen[0][1]
        needed = {guarantee for _, guarantee, _ in runs if guarantee not in BORROWED}
        # A row without a project of its own reads the project it borrows, when that can be rendered.
        needed |= {args.lenders[project] for _, project, _ in runs if project in BORROWED} - absent
        lanes = [Lane(index, rows) for index, rows in chosen]
        say(f"rendering and installing {', '.join(sorted(needed))} under {root}; starting {len(lanes)} stack(s)")
        with ThreadPoolExecutor(max_workers=1) as stacks:
            # One stack after another (each picks free ports), while the projects are rendered and installed.
            starting = stacks.submit(start_stacks, lanes)
            built: dict[str, tuple[Path | None, str]] = {
                name: prepare(name, answers, root)
                for name, answers in client_projects(clients.chosen(args.client)).items()
                if name in needed
            }
            starting.result()
        for project, lender in args.lenders.items():
            built[project] = (None, built[lender][1] if lender in built else "")
        expected = len(runs) * args.repeat
        with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
            results = [pool.submit(lane.run, built, args, root, output) for lane in lanes]
            done = [result for future in results for result in future.result()]
        order = {name: index for index, (name, _, _) in enumerate(plan)}
        rows = sorted(done, key=lambda row: order[row[0]])
    finally:
        for lane in lanes:
            lane.down(args.keep)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(rows))
    if scaled := [(name, r) for name, _, r, _ in rows if "steps" in r]:
        print(f"\n{scaling_figures.table(scaled)}")
    held = sum(1 for *_, broken in rows if not broken)
    print(f"\n{len(rows)} of {expected} scenarios ran in {time.monotonic() - started:.0f} s")
    # Every planned scenario must run and hold: one that did not run counts as failed.
    print(f"chaos: {held} passed, {expected - held} failed")
    return 0 if rows and held == expected else 1


def table(rows: list[tuple[str, str, dict[str, Any], list[str]]]) -> str:
    head = ("scenario", "guarantee", "inputs", "outputs", "duplicates", "lost", "kills", "result", "notes")
    lines = [head]
    for name, guarantee, r, broken in rows:
        notes = []
        if "librdkafka" in r:
            c = r["librdkafka"]
            notes.append(f"librdkafka counts {c['outputs']}/{c['duplicates']} dup/{c['lost']} lost")
        if "groups" in r:
            notes.append(f"{r['groups']} group(s) x {r['members']} worker(s)")
        if "effect_duplicates" in r:
            notes.append(f"side effects {r['effects']}, {r['effect_duplicates']} duplicate (shared PostgreSQL store)")
        elif "effects" in r:
            notes.append(f"side effects recorded {r['effects']} (keyed by event id, 0 dup)")
        if "dead_letters" in r:
            notes.append(f"dead letters {r['dead_letters']}, bad headers {r['bad_headers']}")
        if "hostile" in r:
            notes.append(hostile.notes(r))
        if "slow_handler_ms" in r:
            notes.append(f"handlers {r['slow_handler_ms']} ms, {r['concurrency']} per partition at once")
        if "retries" in r:
            notes.append(f"client retries {r['retries']}")
        for pattern in PATTERNS:
            notes.extend(pattern.notes(r))
        notes.extend(scaling_figures.notes(r))
        notes.extend(queue_figures.notes(r))
        if "fences" in r:
            notes.append(
                f"{r['producer_fences']} producers fenced in {r['fences']} of {r['planned_fences']} planned rounds, "
                f"{r['aborted']} transactions failed, output leader lost {r['leader_down_s']} s, "
                f"final lag {r['final_lag']}"
            )
        if "seconds" in r:
            notes.append(f"{r['seconds']} s")
        lines.append(
            (
                name,
                clients.unrendered(guarantee),
                str(r.get("inputs", "-")),
                str(r.get("outputs", "-")),
                str(r.get("duplicates", "-")),
                str(r.get("lost", "-")),
                str(r.get("kills", "-")),
                "BROKEN: " + ", ".join(broken) if broken else "ok",
                "; ".join(notes),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


if __name__ == "__main__":
    sys.exit(main())
