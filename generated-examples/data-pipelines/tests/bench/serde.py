"""What the Avro serde costs per event, next to raw fastavro on the same record.

    uv run python -m tests.bench.serde [--events 200000]

The registry is confluent-kafka's in-memory one: after the first event the serde asks it nothing, so this measures
the hot path alone (framing, the model's fields, fastavro). An event's latency is the mean of a run of 100.
"""

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from io import BytesIO

from confluent_kafka.schema_registry._async.mock_schema_registry_client import AsyncMockSchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from order_pipelines.events.avro import AvroSerde, load_schema
from order_pipelines.events.catalog import TOPICS
from tests.samples import sample_event

from .measure import Row, Run, alternate, row, table

CHUNK = 100


async def timed(events: int, encode: Callable[[], Awaitable[object]]) -> Run:
    latencies: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(max(events // CHUNK, 1)):
        chunk_started = time.perf_counter()
        for _ in range(CHUNK):
            await encode()
        latencies.append((time.perf_counter() - chunk_started) / CHUNK)
    return Run(len(latencies) * CHUNK, time.perf_counter() - started, latencies, cpu_seconds=time.process_time() - cpu)


async def bench(events: int, repetitions: int) -> list[Row]:
    topic = TOPICS[0]
    event = sample_event(topic)
    serde = AvroSerde(AsyncMockSchemaRegistryClient({"url": "mock://"}), "topic-record", True)
    await serde.serialize(topic, event)  # registers and caches the schema id
    parsed = parse_schema(load_schema(type(event)))
    record = {name: value for name, value in vars(event).items() if name != "type"}

    async def raw() -> bytes:
        out = BytesIO()
        schemaless_writer(out, parsed, record)
        return out.getvalue()

    async def service() -> bytes:
        return await serde.serialize(topic, event)

    async def raw_once() -> Run:
        return await timed(events, raw)

    async def serde_once() -> Run:
        return await timed(events, service)

    raw_runs, serde_runs = await alternate(repetitions, raw_once, serde_once)
    notes = {"record_bytes": len(await service()), "events": events}
    return [
        row("serde", "fastavro schemaless_writer", raw_runs, notes=notes),
        # The serde may take at most 1.15 times as long as fastavro alone.
        row("serde", "service AvroSerde", serde_runs, baseline="fastavro schemaless_writer", goal=0.87, notes=notes),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    print(table(asyncio.run(bench(args.events, args.repetitions))))


if __name__ == "__main__":
    main()
