"""The schema registry: Apicurio Registry, serving the Confluent Schema Registry API."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from .errors import StackError, say
from .java import find_java
from .jvm import ClassArchive, java_options
from .maven import fetch_tarball
from .piece import Piece
from .versions import APICURIO_VERSION

COMPATIBILITY_LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)


class Registry(Piece):
    """Apicurio Registry, serving the Confluent Schema Registry API under /apis/ccompat/v7; in-memory storage."""

    name = "registry"
    api_path = "/apis/ccompat/v7"

    def install(self) -> None:
        self.java = find_java(21)  # Apicurio 3 is a Quarkus app built for Java 21
        self.app = fetch_tarball(
            f"apicurio-registry-{APICURIO_VERSION}", f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
        )

    def port_names(self) -> list[str]:
        return ["http", "management"]

    def command(self, ports: dict[str, int]) -> list[str]:
        options = java_options(["-Xms128m", "-Xmx512m"])
        jar = self.app / "quarkus-run.jar"
        self.class_archive = ClassArchive.of("registry", self.java, self.app, str(jar), options, self.home)
        return [
            self.java,
            *options,
            *self.class_archive.options(),
            f"-Dkafka.stack.dir={self.state_dir}",
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={ports['http']}",
            # Quarkus serves health and metrics on a second port, 9000 unless told otherwise.
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={ports['management']}",
            "-Dquarkus.http.access-log.enabled=false",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-jar",
            str(jar),
        ]

    def url(self, ports: dict[str, int]) -> str:
        return f"http://127.0.0.1:{ports['http']}{self.api_path}"

    def ready(self, ports: dict[str, int]) -> bool:
        # The endpoint the chart's readinessProbe asks, on the management port: this proof covers that probe.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['management']}/health/ready", timeout=2) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):  # a 503 (not ready yet) raises HTTPError, an OSError
            return False

    def configure(self, ports: dict[str, int]) -> None:
        # Apicurio accepts any new version until a compatibility rule exists; Confluent's default is BACKWARD.
        level = compatibility_level(self.options.get("compatibility"))
        request = urllib.request.Request(
            f"{self.url(ports)}/config",
            data=json.dumps({"compatibility": level}).encode(),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        say(f"registry: global compatibility level {level}")

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        return {"SCHEMA_REGISTRY_URL": self.url(ports)}


def compatibility_level(level: str | None = None) -> str:
    """`level`, else KAFKA_STACK_SCHEMA_COMPATIBILITY, else BACKWARD; refused unless it is a registry level."""
    chosen = (level or os.environ.get("KAFKA_STACK_SCHEMA_COMPATIBILITY") or "BACKWARD").strip().upper()
    if chosen not in COMPATIBILITY_LEVELS:
        raise StackError(f"{chosen} is not a compatibility level; type one of {', '.join(COMPATIBILITY_LEVELS)}.")
    return chosen
