"""What the Avro serde costs per event, next to raw fastavro on the same record.

    uv run python -m tests.bench_serde [--events 200000]     # or: make bench

The registry is confluent-kafka's in-memory one: after the first event the serde asks it nothing, so this measures
the hot path alone (framing, the model's fields, fastavro). Prints figures; asserts nothing.
"""

import argparse
import asyncio
import time
from io import BytesIO

from confluent_kafka.schema_registry._async.mock_schema_registry_client import AsyncMockSchemaRegistryClient
from fastavro import parse_schema, schemaless_writer

from task_audit.events.avro import AvroSerde, load_schema
from task_audit.events.catalog import TOPICS
from tests.samples import sample_event


async def bench(events: int) -> None:
    topic = TOPICS[0]
    event = sample_event(topic)
    serde = AvroSerde(AsyncMockSchemaRegistryClient({"url": "mock://"}), "topic-record", True)
    await serde.serialize(topic, event)  # registers and caches the schema id
    parsed = parse_schema(load_schema(type(event)))
    record = {name: value for name, value in vars(event).items() if name != "type"}

    def raw() -> bytes:
        out = BytesIO()
        schemaless_writer(out, parsed, record)
        return out.getvalue()

    best_raw = best_serde = float("inf")
    for _ in range(5):  # best of five: the least disturbed run
        started = time.perf_counter()
        for _ in range(events):
            raw()
        best_raw = min(best_raw, (time.perf_counter() - started) / events)
        started = time.perf_counter()
        for _ in range(events):
            await serde.serialize(topic, event)
        best_serde = min(best_serde, (time.perf_counter() - started) / events)
    size = len(await serde.serialize(topic, event))
    print(f"{type(event).__name__}: {size} bytes per record (5 of them the wire-format header)")
    print(f"raw fastavro schemaless_writer: {best_raw * 1e6:7.2f} µs per event")
    print(f"AvroSerde.serialize:            {best_serde * 1e6:7.2f} µs per event")
    print(f"ratio:                          {best_serde / best_raw:7.2f} x (goal: at most 1.15 x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    asyncio.run(bench(parser.parse_args().events))


if __name__ == "__main__":
    main()
