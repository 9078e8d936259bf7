"""Kafka Connect with Debezium's PostgreSQL connector, and the clean-up of what its connectors made."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import suppress

from .errors import StackError, say
from .java import find_java
from .jvm import ClassArchive, java_options
from .kafka import Kafka
from .maven import fetch_tarball, resolve_jars
from .pgwire import PostgresError, postgres_query, sql_identifier, sql_literal
from .piece import Piece
from .state import StackState, entry_options, entry_ports
from .versions import DEBEZIUM_VERSION, KAFKA_VERSION, LOG4J_VERSION, SLF4J_VERSION

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"


class Connect(Piece):
    """A Kafka Connect worker in distributed mode (one worker; its configs, offsets and status in Kafka topics), with
    Debezium's PostgreSQL connector, its converters and its transforms (the outbox EventRouter) on the plugin path.
    REST on 127.0.0.1 only, without authentication: anyone on this machine may register connectors."""

    name = "connect"
    group = "kafka-stack-connect"

    def install(self) -> None:
        self.java = find_java(17)  # Kafka Connect 4 runs on Java 17+
        self.libs = resolve_jars(
            f"kafka-connect-{KAFKA_VERSION}",
            [
                f"org.apache.kafka:connect-runtime:{KAFKA_VERSION}",
                # The converters and transforms of Apache Kafka's own distribution.
                f"org.apache.kafka:connect-json:{KAFKA_VERSION}",
                f"org.apache.kafka:connect-transforms:{KAFKA_VERSION}",
                f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
                f"org.apache.logging.log4j:log4j-slf4j2-impl:{LOG4J_VERSION}",
                f"org.slf4j:slf4j-api:{SLF4J_VERSION}",
            ],
        )
        # The connector as Debezium publishes it for Kafka Connect: one folder of jars, loaded in its own class loader.
        self.plugins = fetch_tarball(
            f"debezium-connector-postgres-{DEBEZIUM_VERSION}",
            f"io.debezium:debezium-connector-postgres:{DEBEZIUM_VERSION}:tar.gz:plugin",
        )

    def port_names(self) -> list[str]:
        return ["rest"]

    def kafka(self) -> tuple[str, int]:
        """The stack's bootstrap servers, and the replication factor its internal topics get."""
        entry = StackState(self.state_dir).load().get("kafka")
        if entry is None:
            raise StackError("connect needs the stack's Kafka; start it with `up --with connect`.")
        options = entry_options(entry)
        if options.get("secure") == "true":
            raise StackError("connect runs beside a plaintext Kafka; leave out --secure, or --with connect.")
        settings = Kafka(self.state_dir, options).settings(entry_ports(entry))
        return settings["KAFKA_BOOTSTRAP_SERVERS"], 3 if "voters" in options else 1

    def prepare(self, ports: dict[str, int]) -> None:
        bootstrap, replicas = self.kafka()
        (self.home / "connect.properties").write_text(
            "\n".join(
                [
                    f"bootstrap.servers={bootstrap}",
                    f"group.id={self.group}",
                    f"config.storage.topic={self.group}-configs",
                    f"offset.storage.topic={self.group}-offsets",
                    f"status.storage.topic={self.group}-status",
                    f"config.storage.replication.factor={replicas}",
                    f"offset.storage.replication.factor={replicas}",
                    f"status.storage.replication.factor={replicas}",
                    "offset.storage.partitions=1",
                    "status.storage.partitions=1",
                    # A connector without converters of its own gets plain JSON (no schema envelope).
                    "key.converter=org.apache.kafka.connect.json.JsonConverter",
                    "value.converter=org.apache.kafka.connect.json.JsonConverter",
                    "key.converter.schemas.enable=false",
                    "value.converter.schemas.enable=false",
                    # Source offsets (a PostgreSQL LSN) are committed every second rather than every minute: a crash
                    # replays less (at least once either way: the slot keeps what was not acknowledged).
                    "offset.flush.interval.ms=1000",
                    # Source tasks write their records and their offsets in one Kafka transaction (KIP-618): a connector
                    # with `exactly.once.support=required` neither loses nor repeats a change when the worker crashes.
                    "exactly.once.source.support=enabled",
                    # One worker: a task it lost in a crash is its own again at once, not after five minutes.
                    "scheduled.rebalance.max.delay.ms=0",
                    f"listeners=http://127.0.0.1:{ports['rest']}",
                    "rest.advertised.host.name=127.0.0.1",
                    f"rest.advertised.port={ports['rest']}",
                    f"plugin.path={self.plugins}",
                    # Debezium's jars declare their plugins in ServiceLoader manifests: no class scanning at start.
                    "plugin.discovery=service_load",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(
            "\n".join(
                [
                    "status = warn",
                    "appender.file.type = File",
                    "appender.file.name = file",
                    f"appender.file.fileName = {self.home / 'connect.log'}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %X{connector.context}%m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    "logger.reflections.name = org.reflections",
                    "logger.reflections.level = ERROR",
                    "",
                ]
            )
        )

    def command(self, ports: dict[str, int]) -> list[str]:
        options = java_options(["-Xms128m", "-Xmx512m", "-XX:+UseG1GC"])
        self.class_archive = ClassArchive.of("connect", self.java, self.libs, f"{self.libs}/*", options, self.home)
        return [
            self.java,
            *options,
            *self.class_archive.options(),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.stack.dir={self.state_dir}",
            "-cp",
            f"{self.libs}/*",
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.home / "connect.properties"),
        ]

    def url(self, ports: dict[str, int]) -> str:
        return f"http://127.0.0.1:{ports['rest']}"

    def rest(self, ports: dict[str, int], path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.url(ports)}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def ready(self, ports: dict[str, int]) -> bool:
        # The REST API answers once the worker joined its group and read its config topic; the plugin list says the
        # connector loaded from the plugin path.
        try:
            plugins = self.rest(ports, "/connector-plugins")
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return isinstance(plugins, list) and any(p.get("class") == POSTGRES_CONNECTOR for p in plugins)

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        return {"KAFKA_CONNECT_URL": self.url(ports)}

    def release(self, ports: dict[str, int]) -> None:
        """Delete every connector, then drop the replication slots and publications that the PostgreSQL ones made in
        the stack's PostgreSQL: a slot outliving its connector holds back the server's WAL for ever."""
        connectors = self.rest(ports, "/connectors?expand=info")
        if not isinstance(connectors, dict) or not connectors:
            return
        made: list[tuple[str, str, str]] = []  # (database, slot, publication)
        for name, described in connectors.items():
            config = described["info"]["config"]
            self.rest(ports, f"/connectors/{urllib.parse.quote(name, safe='')}", method="DELETE")
            say(f"connect: connector {name} deleted")
            if config.get("connector.class") == POSTGRES_CONNECTOR and self.in_stack(config):
                made.append(
                    (
                        config.get("database.dbname", "postgres"),
                        config.get("slot.name", "debezium"),
                        config.get("publication.name", "dbz_publication"),
                    )
                )
        postgres = StackState(self.state_dir).running("postgres")
        if postgres is None:
            return
        port = entry_ports(postgres)["postgres"]
        for database, slot, publication in made:
            drop_slot(port, database, slot)
            postgres_query(port, database, f"DROP PUBLICATION IF EXISTS {sql_identifier(publication)}")
            say(f"postgres: replication slot {slot} and publication {publication} dropped")

    def in_stack(self, config: dict[str, str]) -> bool:
        postgres = StackState(self.state_dir).load().get("postgres")
        if postgres is None:
            return False
        port = str(entry_ports(postgres).get("postgres"))
        return config.get("database.hostname") in ("127.0.0.1", "localhost") and config.get("database.port") == port


def drop_slot(port: int, database: str, slot: str) -> None:
    """Drop a logical replication slot (from its own database, as PostgreSQL requires) once its reader let go: the
    deleted connector's task closes its replication connection as it stops, which takes a moment. A reader still
    there after 30 s has its backend ended."""
    literal = sql_literal(slot)
    holder = f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = {literal}"
    drop = f"SELECT pg_drop_replication_slot({literal})"
    for _ in range(150):
        rows = postgres_query(port, database, holder)
        if not rows:
            return
        if rows[0][0] is None:
            with suppress(PostgresError):  # taken again for an instant, or dropped meanwhile: look again
                postgres_query(port, database, drop)
                return
        time.sleep(0.2)
    rows = postgres_query(port, database, holder)
    if rows and rows[0][0] is not None:
        postgres_query(port, database, f"SELECT pg_terminate_backend({int(rows[0][0])})")
        time.sleep(1)
    if rows:
        postgres_query(port, database, drop)
