"""Rows of the bench: events per second and latency percentiles, the median of repeated runs."""

import statistics
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Run:
    """One repetition: `events` in `seconds`, with each event's latency in seconds (when measured)."""

    events: int
    seconds: float
    latencies: Sequence[float] = ()
    percentiles: tuple[float, float] | None = None
    """p50 and p99 as a load generator reported them, when it keeps the latencies to itself."""
    cpu_seconds: float | None = None
    """CPU time the measured process spent on the run: a figure a busy machine disturbs less than the rate."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def p50_p99(self) -> tuple[float | None, float | None]:
        if self.percentiles is not None:
            return self.percentiles
        return percentile(self.latencies, 50), percentile(self.latencies, 99)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (nearest rank) of `values`, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass(frozen=True)
class Row:
    """One measured path: the median of its repetitions' rates and latency percentiles (milliseconds)."""

    group: str
    name: str
    events_per_second: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_us_per_event: float | None
    repetitions: list[dict[str, float | None]]
    baseline: str | None = None
    """The `name` of the row this one is compared with (the ratio is this row's rate over that one's)."""
    goal: float | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def row(group: str, name: str, runs: Sequence[Run], **extra: Any) -> Row:
    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1000

    repetitions = [
        {
            "events_per_second": run.rate,
            "p50_ms": ms(run.p50_p99()[0]),
            "p99_ms": ms(run.p50_p99()[1]),
            "cpu_us_per_event": None if run.cpu_seconds is None else run.cpu_seconds / run.events * 1e6,
        }
        for run in runs
    ]

    def median(key: str) -> float | None:
        values = [value for rep in repetitions if (value := rep[key]) is not None]
        return statistics.median(values) if values else None

    return Row(
        group,
        name,
        median("events_per_second") or 0.0,
        median("p50_ms"),
        median("p99_ms"),
        median("cpu_us_per_event"),
        repetitions,
        **extra,
    )


async def repeat(times: int, once: Callable[[], Awaitable[Run]]) -> list[Run]:
    return [await once() for _ in range(times)]


async def alternate(times: int, *onces: Callable[[], Awaitable[Run]]) -> list[list[Run]]:
    """Each of `onces` `times` times, taking turns, so a disturbance of the (shared) machine hits them alike."""
    runs: list[list[Run]] = [[] for _ in onces]
    for _ in range(times):
        for runs_of, once in zip(runs, onces, strict=True):
            runs_of.append(await once())
    return runs


def ratio(rows: Sequence[Row], measured: Row) -> float | None:
    base = next((r for r in rows if r.name == measured.baseline), None)
    if base is None or not base.events_per_second:
        return None
    return measured.events_per_second / base.events_per_second


def table(rows: Sequence[Row]) -> str:
    def cell(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    lines = [
        "| group | path | events/s | p50 ms | p99 ms | CPU µs/event | ratio | goal |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for measured in rows:
        share = ratio(rows, measured)
        goal = f">= {measured.goal:g}x" if measured.goal is not None else ""
        lines.append(
            f"| {measured.group} | {measured.name} | {measured.events_per_second:,.0f} | {cell(measured.p50_ms, 2)} "
            f"| {cell(measured.p99_ms, 2)} | {cell(measured.cpu_us_per_event, 0)} "
            f"| {'' if share is None else f'{share:.2f}x'} | {goal} |"
        )
    return "\n".join(lines)
