"""Kafka in KRaft mode: one combined broker and controller, or three nodes (`up --brokers 3`)."""

from __future__ import annotations

import base64
import socket
import ssl
import subprocess
import uuid

from .errors import StackError
from .java import find_java
from .jvm import ClassArchive, java_options
from .kafkawire import metadata_broker_count
from .maven import resolve_jars
from .piece import Piece
from .tls import ADMIN_USER, make_tls, secret, secure_properties
from .versions import JMX_EXPORTER_VERSION, KAFKA_VERSION, LOG4J_VERSION, SLF4J_VERSION

# Strimzi's JMX exporter rules for Kafka (packaging/examples/metrics/kafka-metrics.yaml), the generic part: metric
# names as Strimzi's dashboards and alerts know them (kafka_server_replicamanager_underreplicatedpartitions, ...).
STRIMZI_METRIC_RULES = """\
lowercaseOutputName: true
# Only the MBeans the alerts and dashboards read: walking all of them takes seconds per scrape on a small machine.
includeObjectNames:
- "kafka.server:type=ReplicaManager,*"
- "kafka.controller:type=KafkaController,*"
- "kafka.server:type=BrokerTopicMetrics,*"
rules:
- pattern: kafka.(\\w+)<type=(.+), name=(.+)Percent\\w*><>MeanRate
  name: kafka_$1_$2_$3_percent
  type: GAUGE
- pattern: kafka.(\\w+)<type=(.+), name=(.+)Percent\\w*><>Value
  name: kafka_$1_$2_$3_percent
  type: GAUGE
- pattern: kafka.(\\w+)<type=(.+), name=(.+)Percent\\w*, (.+)=(.+)><>Value
  name: kafka_$1_$2_$3_percent
  type: GAUGE
  labels:
    "$4": "$5"
- pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*, (.+)=(.+), (.+)=(.+)><>Count
  name: kafka_$1_$2_$3_total
  type: COUNTER
  labels:
    "$4": "$5"
    "$6": "$7"
- pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*, (.+)=(.+)><>Count
  name: kafka_$1_$2_$3_total
  type: COUNTER
  labels:
    "$4": "$5"
- pattern: kafka.(\\w+)<type=(.+), name=(.+)PerSec\\w*><>Count
  name: kafka_$1_$2_$3_total
  type: COUNTER
- pattern: kafka.(\\w+)<type=(.+), name=(.+), (.+)=(.+), (.+)=(.+)><>Value
  name: kafka_$1_$2_$3
  type: GAUGE
  labels:
    "$4": "$5"
    "$6": "$7"
- pattern: kafka.(\\w+)<type=(.+), name=(.+), (.+)=(.+)><>Value
  name: kafka_$1_$2_$3
  type: GAUGE
  labels:
    "$4": "$5"
- pattern: kafka.(\\w+)<type=(.+), name=(.+)><>Value
  name: kafka_$1_$2_$3
  type: GAUGE
"""


class Kafka(Piece):
    """One combined broker and controller in KRaft mode; with `up --brokers 3`, the first of three (static voters)."""

    name = "kafka"
    node_id = 1

    @property
    def clustered(self) -> bool:
        return "voters" in self.options

    def install(self) -> None:
        if self.clustered:
            self.install_metrics()
        self.java = find_java(17)  # Kafka 4 brokers run on Java 17+
        self.libs = resolve_jars(
            f"kafka-{KAFKA_VERSION}",
            [
                f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
                # Kafka 4 leaves its logging backend to the distribution; these are the ones it ships.
                f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
                f"org.apache.logging.log4j:log4j-slf4j2-impl:{LOG4J_VERSION}",
                f"org.slf4j:slf4j-api:{SLF4J_VERSION}",
            ],
        )

    @property
    def secure(self) -> bool:
        return self.options.get("secure") == "true"

    def port_names(self) -> list[str]:
        # The nodes of a cluster also serve Prometheus metrics (the JMX exporter, Strimzi's rules).
        return ["broker", "controller", *(["mtls"] if self.secure else []), *(["metrics"] if self.clustered else [])]

    def install_metrics(self) -> None:
        self.jmx_exporter = next(
            resolve_jars(
                f"jmx-exporter-{JMX_EXPORTER_VERSION}",
                [f"io.prometheus.jmx:jmx_prometheus_javaagent:{JMX_EXPORTER_VERSION}"],
            ).glob("jmx_prometheus_javaagent-*.jar")
        )

    def prepare(self, ports: dict[str, int]) -> None:
        data = self.home / "data"
        broker, controller = ports["broker"], ports["controller"]
        properties = self.home / "server.properties"
        if self.secure:
            make_tls(self.home / "tls")
            listeners = secure_properties(self.home, ports, self.admin_password)
        else:
            listeners = [
                f"listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ]
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    *listeners,
                    "controller.listener.names=CONTROLLER",
                    *self.quorum_and_replication(controller),
                    f"log.dirs={data}",
                    # Tests start consumer groups constantly; the default 3 s delay only slows them down.
                    "group.initial.rebalance.delay.ms=0",
                    # The consumer group protocol (KIP-848) keeps a member's session timeout on the broker (45 s by
                    # default, and no client may ask for less): a member killed in development or a chaos row would
                    # hold its partitions that long. 10 s, with heartbeats every 2 s, as a local stack wants.
                    "group.consumer.min.session.timeout.ms=6000",
                    "group.consumer.session.timeout.ms=10000",
                    "group.consumer.min.heartbeat.interval.ms=1000",
                    "group.consumer.heartbeat.interval.ms=2000",
                    # Share groups (KIP-932) alike; and a queue's acquisition lock must outlast its longest handler
                    # (a service asks for twice its handler bound): the default maximum of 60 s would refuse it.
                    "group.share.min.session.timeout.ms=6000",
                    "group.share.session.timeout.ms=10000",
                    "group.share.min.heartbeat.interval.ms=1000",
                    "group.share.heartbeat.interval.ms=2000",
                    "group.share.max.record.lock.duration.ms=3600000",
                    "num.partitions=3",
                    "auto.create.topics.enable=false",
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
                    f"appender.file.fileName = {self.home / 'server.log'}",
                    "appender.file.layout.type = PatternLayout",
                    "appender.file.layout.pattern = [%d] %p %m (%c)%n",
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.file.ref = file",
                    "logger.request.name = kafka.request.logger",
                    "logger.request.level = WARN",
                    "",
                ]
            )
        )
        if not (data / "meta.properties").exists():
            if self.clustered:  # static voters: every node formats with the cluster's one id
                self.tool(
                    ["kafka.tools.StorageTool", "format", "-t", self.options["cluster_id"], "-c", str(properties)]
                )
            else:
                # The admin exists from the first start: with ACLs enforced, nobody could create it afterwards.
                admin = ["--add-scram", f"SCRAM-SHA-512=[name={ADMIN_USER},password={self.admin_password}]"]
                self.tool(
                    [
                        "kafka.tools.StorageTool",
                        "format",
                        "--standalone",
                        "-t",
                        self.cluster_id(),
                        "-c",
                        str(properties),
                    ]
                    + (admin if self.secure else [])
                )
        self.log_start = (self.home / "server.log").stat().st_size if (self.home / "server.log").exists() else 0

    @property
    def admin_password(self) -> str:
        return secret(self.home / "admin.password")

    @staticmethod
    def cluster_id() -> str:
        """A new cluster id as `kafka-storage.sh random-uuid` makes it (Kafka's Uuid: a random UUID, base64url without
        padding, never starting with a dash), without starting a JVM for it."""
        while True:
            text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            if not text.startswith("-"):
                return text

    def quorum_and_replication(self, controller: int) -> list[str]:
        if not self.clustered:
            return [
                f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
                # The controller marks an idle metadata log with a record twice a second, for other nodes to see it
                # is alive: alone, it would spend a third of its idle CPU on telling itself.
                "metadata.max.idle.interval.ms=10000",
                # A single node: every internal topic gets one replica.
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
            ]
        # Three nodes, as production: three replicas, two of which must have a write before it is acknowledged.
        return [
            f"controller.quorum.voters={self.options['voters']}",
            "default.replication.factor=3",
            "min.insync.replicas=2",
            "offsets.topic.replication.factor=3",
            "transaction.state.log.replication.factor=3",
            "transaction.state.log.min.isr=2",
            "share.coordinator.state.topic.replication.factor=3",
            "share.coordinator.state.topic.min.isr=2",
        ]

    def tool(self, args: list[str]) -> str:
        options = java_options([])
        archive = ClassArchive.of("kafka-tools", self.java, self.libs, f"{self.libs}/*", options, self.home)
        result = subprocess.run(
            [self.java, *options, *archive.options(), "-cp", f"{self.libs}/*", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise StackError(f"{' '.join(args[:2])} failed:\n{result.stdout}{result.stderr}")
        archive.adopt()
        return result.stdout

    def command(self, ports: dict[str, int]) -> list[str]:
        options = java_options(["-Xms256m", "-Xmx1g", "-XX:+UseG1GC"])
        if "metrics" in ports:
            rules = self.home / "metrics.yml"
            rules.write_text(STRIMZI_METRIC_RULES)
            # The exporter's agent joins the class path: no class archive (nor the start time it saves) for those.
            options = [f"-javaagent:{self.jmx_exporter}=127.0.0.1:{ports['metrics']}:{rules}", *options]
        else:
            self.class_archive = ClassArchive.of("kafka", self.java, self.libs, f"{self.libs}/*", options, self.home)
            options += self.class_archive.options()
        return [
            self.java,
            *options,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.stack.dir={self.state_dir}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.home / "server.properties"),
        ]

    def ready(self, ports: dict[str, int]) -> bool:
        if self.secure:
            return self.serves_tls(ports["broker"]) and self.started()
        try:
            return metadata_broker_count("127.0.0.1", ports["broker"]) >= 1
        except OSError:
            return False

    def serves_tls(self, port: int) -> bool:
        """A TLS handshake with the stack's CA succeeds (the SASL login that would follow needs a client)."""
        context = ssl.create_default_context(cafile=str(self.home / "tls" / "ca.pem"))
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return True
        except (OSError, ssl.SSLError):
            return False

    def started(self) -> bool:
        """The broker logged that it finished starting, since this start (restarts keep the log)."""
        try:
            with (self.home / "server.log").open("rb") as log:
                log.seek(getattr(self, "log_start", 0))
                return b"Kafka Server started" in log.read()
        except OSError:
            return False

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        if self.clustered:
            if self.node_id != 1:
                return {}
            return {"KAFKA_BOOTSTRAP_SERVERS": self.options["bootstrap"], "KAFKA_METRICS": self.options["metrics"]}
        if not self.secure:
            return {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}"}
        return {
            # SASL_SSL with SCRAM-SHA-512; the admin is a super user, for tests and tools that set up users.
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}",
            "KAFKA_SSL_CAFILE": str(self.home / "tls" / "ca.pem"),
            "KAFKA_ADMIN_USERNAME": ADMIN_USER,
            "KAFKA_ADMIN_PASSWORD": self.admin_password,
            # SSL with client certificates (`cert NAME` issues one).
            "KAFKA_MTLS_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['mtls']}",
            "KAFKA_STACK_DIR": str(self.state_dir),
        }


class KafkaNode2(Kafka):
    """The second node of `up --brokers 3`."""

    name = "kafka-2"
    node_id = 2


class KafkaNode3(Kafka):
    """The third node of `up --brokers 3`."""

    name = "kafka-3"
    node_id = 3


CLUSTER = ("kafka", "kafka-2", "kafka-3")
"""The nodes of `up --brokers 3`, in node id order; `--with` never names them."""
