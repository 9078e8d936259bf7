"""The Debezium connectors of this service, generated from the spec, and their registration on a Kafka Connect
worker: `python -m order_pipelines connect register` (a deploy step, and `make connect-register` locally) PUTs
each one's config to KAFKA_CONNECT_URL, which creates it or updates it in place, so it can run again at any time.
On Kubernetes the chart's KafkaConnector resources (templates/kafka-connect.yaml) carry the same configs.

Run `python -m order_pipelines migrate` first: the connectors capture tables the migrations create.
The outbox connector reads the publication and replication slot `migrate` makes, so that the slot keeps every
outbox row from the migration on.
The CDC connector makes its own at its first start, right before its initial snapshot."""

import argparse
import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from ..kafka.admin import DeclaredTopic, ensure_topics
from ..settings import get_settings
from .settings import get_database_settings

CONNECTORS: dict[str, dict[str, str]] = {
    # The outbox: each row inserted into `outbox` becomes one record on the topic its aggregatetype names.
    "order-pipelines-outbox": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "topic.prefix": "order-pipelines-outbox",
        "table.include.list": "public.outbox",
        "slot.name": "order_pipelines_outbox",
        "publication.name": "order_pipelines_outbox",
        "publication.autocreate.mode": "disabled",
        "heartbeat.interval.ms": "10000",
        "topic.heartbeat.prefix": "debezium-heartbeat",
        "heartbeat.action.query": "UPDATE debezium_heartbeat SET beat = now()",
        "tombstones.on.delete": "false",
        "exactly.once.support": "required",
        "extended.headers.enabled": "false",
        "header.converter": "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "snapshot.mode": "no_data",
        "transforms": "outbox,dropRouterId",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        "transforms.outbox.route.topic.replacement": "${routedByValue}",
        "transforms.outbox.table.fields.additional.placement": (
            "type:header:event-type,"
            "id:header:event-id,"
            "correlation_id:header:correlation-id,"
            "causation_id:header:causation-id"
        ),
        "transforms.dropRouterId.type": "org.apache.kafka.connect.transforms.DropHeaders",
        "transforms.dropRouterId.headers": "id",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "io.debezium.converters.BinaryDataConverter",
        "value.converter.delegate.converter.type": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.delegate.converter.type.schemas.enable": "false",
    },
    # Change data capture of customers: a snapshot of its rows first, then every change.
    "order-pipelines-cdc": {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "topic.prefix": "order-pipelines-cdc",
        "table.include.list": "public.customers",
        "slot.name": "order_pipelines_cdc",
        "publication.name": "order_pipelines_cdc",
        "publication.autocreate.mode": "filtered",
        "heartbeat.interval.ms": "10000",
        "topic.heartbeat.prefix": "debezium-heartbeat",
        "tombstones.on.delete": "false",
        "exactly.once.support": "required",
        "extended.headers.enabled": "false",
        "header.converter": "org.apache.kafka.connect.storage.SimpleHeaderConverter",
        "snapshot.mode": "initial",
        "transforms": "topic",
        "transforms.topic.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.topic.regex": "order-pipelines-cdc\\.public\\.customers",
        "transforms.topic.replacement": "customers.changes",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
    },
}

# The table each connector's heartbeat query writes: in every publication, captured by none.
HEARTBEAT_TABLE = "debezium_heartbeat"


def captures() -> dict[str, list[str]]:
    """The replication slot (named as its publication) and the publication's tables of each connector that `migrate`
    prepares: those that create neither themselves (the outbox, whose rows are gone before any snapshot could read
    them). The CDC connector makes its own at its first start, right before its initial snapshot."""
    captured: dict[str, list[str]] = {}
    for config in CONNECTORS.values():
        if config["slot.name"] != config["publication.name"]:
            raise ValueError("each connector's publication is named as its slot")
        if config["publication.autocreate.mode"] != "disabled":
            continue
        tables = [table.strip() for table in config["table.include.list"].split(",")]
        captured[config["slot.name"]] = [*tables, f"public.{HEARTBEAT_TABLE}"]
    return captured


def slots() -> list[str]:
    """Every connector's replication slot, named as its publication."""
    return [config["slot.name"] for config in CONNECTORS.values()]


def heartbeat_topics() -> list[str]:
    """The topics the connectors' heartbeat records go to, one each."""
    return [f"{config['topic.heartbeat.prefix']}.{config['topic.prefix']}" for config in CONNECTORS.values()]


def database_options(url: str) -> dict[str, str]:
    """Where Debezium finds the database: the parts of DATABASE_URL (postgresql://user:password@host:port/db)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ValueError("DATABASE_URL must read postgresql://user:password@host:port/database")
    options = {
        "database.hostname": parts.hostname,
        "database.port": str(parts.port or 5432),
        "database.user": urllib.parse.unquote(parts.username or "postgres"),
        "database.dbname": parts.path.lstrip("/") or "postgres",
    }
    if parts.password:
        options["database.password"] = urllib.parse.unquote(parts.password)
    return options


def configs(database_url: str) -> dict[str, dict[str, str]]:
    """Every connector's full config against the database at `database_url`."""
    database = database_options(database_url)
    return {name: {**config, **database} for name, config in CONNECTORS.items()}


def _call(connect_url: str, path: str, body: object = None, method: str = "GET", timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{connect_url.rstrip('/')}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def register(connect_url: str, database_url: str) -> list[str]:
    """Create or update every connector; return their names."""
    for name, config in configs(database_url).items():
        _call(connect_url, f"/connectors/{urllib.parse.quote(name, safe='')}/config", config, method="PUT")
    return list(CONNECTORS)


def state(connect_url: str, name: str) -> str:
    """RUNNING once the connector and its task run; else the first state that is not, FAILED with its trace."""
    try:
        status = _call(connect_url, f"/connectors/{urllib.parse.quote(name, safe='')}/status", timeout=10)
    except (OSError, urllib.error.URLError):
        return "UNREACHABLE"
    tasks = status.get("tasks") or []
    for task in tasks:
        if task["state"] == "FAILED":
            return f"FAILED: {task.get('trace', '').splitlines()[:1]}"
    if status["connector"]["state"] != "RUNNING":
        return str(status["connector"]["state"])
    return "RUNNING" if tasks and all(task["state"] == "RUNNING" for task in tasks) else "STARTING"


def await_running(connect_url: str, names: list[str], timeout_seconds: float) -> dict[str, str]:
    """Wait until every connector runs (or one failed); return each one's state."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        states = {name: state(connect_url, name) for name in names}
        if all(s == "RUNNING" for s in states.values()) or any(s.startswith("FAILED") for s in states.values()):
            return states
        if time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def main(argv: list[str] | None = None, prog: str | None = None, topics: Sequence[DeclaredTopic] = ()) -> int:
    """`topics`: the chosen plug-ins', created with the service's and the heartbeats' where it creates topics."""
    parser = argparse.ArgumentParser(prog=prog, description="Register or show the service's Debezium connectors.")
    commands = parser.add_subparsers(dest="command", required=True)
    registering = commands.add_parser("register", help="create or update every connector on KAFKA_CONNECT_URL")
    registering.add_argument(
        "--wait", type=float, default=60.0, metavar="SECONDS", help="how long to wait until they run (0: not at all)"
    )
    commands.add_parser("show", help="print every connector's config as JSON (the password masked)")
    args = parser.parse_args(argv)
    settings = get_settings()
    database = get_database_settings()
    if database.url is None:
        parser.error("set DATABASE_URL (postgresql://user:password@host:port/database)")
    database_url = database.url.get_secret_value()
    if args.command == "show":
        shown = configs(database_url)
        for config in shown.values():
            if "database.password" in config:
                config["database.password"] = "********"
        print(json.dumps(shown, indent=2))
        return 0
    if settings.kafka_create_topics:
        # The topics the connectors write, created first where the service creates its topics (development).
        heartbeats = (DeclaredTopic(name, 1, {"retention.ms": "86400000"}) for name in heartbeat_topics())
        asyncio.run(ensure_topics(settings, (*topics, *heartbeats)))
    names = register(database.kafka_connect_url, database_url)
    if args.wait <= 0:
        print(f"registered {', '.join(names)}")
        return 0
    states = await_running(database.kafka_connect_url, names, args.wait)
    for name, connector_state in states.items():
        print(f"{name}: {connector_state}")
    return 0 if all(s == "RUNNING" for s in states.values()) else 1
