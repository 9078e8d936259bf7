#!/usr/bin/env python3
"""A real local Kafka stack without Docker: Apache Kafka in KRaft mode, from Maven Central.

    python scripts/kafka_stack.py up       # start (idempotent); prints KEY=VALUE settings on stdout
    python scripts/kafka_stack.py up --with registry   # plus a schema registry (Apicurio, Confluent API)
    python scripts/kafka_stack.py env      # print the settings of the running stack
    python scripts/kafka_stack.py status   # what runs where, and its log file
    python scripts/kafka_stack.py down     # stop what `up` started and delete its data

Jars are resolved with Maven into a cache under the home directory (KAFKA_STACK_CACHE, else
$XDG_CACHE_HOME/kafka-events, else ~/.cache/kafka-events); Maven keeps its own repository in ~/.m2.
Every process listens on 127.0.0.1 on free ports. State, data and logs live in the state directory
(--state-dir, else KAFKA_STACK_DIR, else ./.stack). Progress goes to stderr, settings to stdout, so
`eval "$(python scripts/kafka_stack.py up)"` works.

Standard library only: this file is copied into every generated project and runs before any virtual
environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
APICURIO_VERSION = "3.3.3"
COMPATIBILITY_LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


class StackError(Exception):
    """A problem the user can fix; printed without a traceback."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cache_root() -> Path:
    if explicit := os.environ.get("KAFKA_STACK_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kafka-events"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- prerequisites -----------------------------------------------------------------------------


def find_java(min_major: int) -> str:
    """A java binary of at least `min_major`: JAVA_HOME first, then PATH, then /usr/lib/jvm."""
    candidates: list[str] = []
    if java_home := os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(java_home) / "bin" / "java"))
    if on_path := shutil.which("java"):
        candidates.append(on_path)
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        candidates += [str(p / "bin" / "java") for p in sorted(jvm_root.iterdir(), reverse=True)]
    seen: set[str] = set()
    for java in candidates:
        real = os.path.realpath(java)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        if java_major(java) >= min_major:
            return java
    raise StackError(
        f"Java {min_major} or newer is needed and none was found (looked at JAVA_HOME, PATH and /usr/lib/jvm).\n"
        f"Install it, e.g. `sudo apt-get install openjdk-{max(min_major, 17)}-jre-headless` on Debian/Ubuntu "
        f"or `brew install openjdk@{max(min_major, 21)}` on macOS, or point JAVA_HOME at a JDK {min_major}+."
    )


def java_major(java: str) -> int:
    try:
        out = subprocess.run(
            [java, "-XshowSettings:properties", "-version"], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r"java\.specification\.version = (\d+)(?:\.(\d+))?", out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_maven() -> str:
    if mvn := shutil.which("mvn"):
        return mvn
    raise StackError(
        "Maven is needed to fetch the Kafka jars from Maven Central and `mvn` is not on PATH.\n"
        "Install it, e.g. `sudo apt-get install maven` on Debian/Ubuntu or `brew install maven` on macOS."
    )


# --- fetching jars ---------------------------------------------------------------------------------


def resolve_jars(name: str, coordinates: list[str]) -> Path:
    """Copy `coordinates` and their runtime dependencies into a cached lib folder, once."""
    target = cache_root() / name / "libs"
    if (target / ".complete").exists():
        return target
    work = target.parent
    work.mkdir(parents=True, exist_ok=True)
    deps = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>".format(
            *coordinate.split(":")
        )
        for coordinate in coordinates
    )
    (work / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>local.kafka-stack</groupId><artifactId>{name}</artifactId><version>0</version>\n"
        f"  <dependencies>\n{deps}\n  </dependencies>\n</project>\n"
    )
    staging = work / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"Fetching {name} from Maven Central (first run only; cached in {target.parent})")
    run_maven(
        [
            "-f",
            str(work / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return target


def run_maven(args: list[str]) -> None:
    """Run Maven in batch mode, showing one line per downloaded artifact as progress."""
    command = [find_maven(), "-B", *args]
    downloaded = 0
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            match = re.search(r"Downloaded from \S+: \S+/([^/\s]+\.(?:jar|tar\.gz|zip)) \(([^)]*)\)", line)
            if match:
                downloaded += 1
                say(f"  [{downloaded:3d}] {match.group(1)} ({match.group(2).split(' at ')[0]})")
    if proc.returncode != 0:
        tail = "".join(output[-25:])
        raise StackError(f"Maven failed ({' '.join(command)}):\n{tail}")
    if downloaded:
        say(f"  {downloaded} artifacts downloaded")


# --- the Kafka wire protocol, just enough to ask for metadata ------------------------------------


def metadata_broker_count(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Metadata v4 request and return how many brokers the cluster reports."""
    client_id = b"kafka-stack"
    body = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", read_exactly(sock, 4))[0]
        payload = read_exactly(sock, size)
    correlation_id, _throttle_ms, broker_count = struct.unpack(">iii", payload[:12])
    if correlation_id != 1:
        raise OSError("unexpected correlation id in metadata response")
    return int(broker_count)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)


# --- processes -----------------------------------------------------------------------------------


def alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs and is ours: its command line carries the state directory as a marker."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return sys.platform != "linux"  # no /proc to check against elsewhere: trust the pid file
    return marker in cmdline


def stop_process(pid: int, marker: str, name: str) -> None:
    if not alive(pid, marker):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return
        time.sleep(0.1)
    say(f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


# --- pieces of the stack ---------------------------------------------------------------------------


class Piece:
    """One process of the stack. Subclasses say how to install, start, probe and describe it."""

    name = ""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.home = state_dir / self.name
        self.log = self.home / f"{self.name}.log"

    def install(self) -> None:
        raise NotImplementedError

    def command(self, ports: dict[str, int]) -> list[str]:
        raise NotImplementedError

    def prepare(self, ports: dict[str, int]) -> None:
        """Write configuration and initialise data before the first start."""

    def port_names(self) -> list[str]:
        raise NotImplementedError

    def ready(self, ports: dict[str, int]) -> bool:
        raise NotImplementedError

    def configure(self, ports: dict[str, int]) -> None:
        """Apply runtime configuration once the process is ready."""

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        raise NotImplementedError


class Kafka(Piece):
    """One combined broker and controller in KRaft mode."""

    name = "kafka"

    def install(self) -> None:
        self.java = find_java(17)
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

    def port_names(self) -> list[str]:
        return ["broker", "controller"]

    def prepare(self, ports: dict[str, int]) -> None:
        data = self.home / "data"
        broker, controller = ports["broker"], ports["controller"]
        properties = self.home / "server.properties"
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{controller}",
                    f"log.dirs={data}",
                    # A single node: every internal topic gets one replica.
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # Tests start consumer groups constantly; the default 3 s delay only slows them down.
                    "group.initial.rebalance.delay.ms=0",
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
            cluster_id = self.tool(["kafka.tools.StorageTool", "random-uuid"]).strip().splitlines()[-1]
            self.tool(["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(properties)])

    def tool(self, args: list[str]) -> str:
        result = subprocess.run(
            [self.java, "-cp", f"{self.libs}/*", *args], capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise StackError(f"{' '.join(args[:2])} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    def command(self, ports: dict[str, int]) -> list[str]:
        return [
            self.java,
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.stack.dir={self.state_dir}",
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.home / "server.properties"),
        ]

    def ready(self, ports: dict[str, int]) -> bool:
        try:
            return metadata_broker_count("127.0.0.1", ports["broker"]) >= 1
        except OSError:
            return False

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['broker']}"}


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
        return [
            self.java,
            "-Xms128m",
            "-Xmx512m",
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
            str(self.app / "quarkus-run.jar"),
        ]

    def url(self, ports: dict[str, int]) -> str:
        return f"http://127.0.0.1:{ports['http']}{self.api_path}"

    def ready(self, ports: dict[str, int]) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url(ports)}/subjects", timeout=2) as response:
                return int(response.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def configure(self, ports: dict[str, int]) -> None:
        # Apicurio accepts any new version until a compatibility rule exists; Confluent's default is BACKWARD.
        level = os.environ.get("KAFKA_STACK_SCHEMA_COMPATIBILITY", "BACKWARD").upper()
        if level not in COMPATIBILITY_LEVELS:
            raise StackError(
                f"KAFKA_STACK_SCHEMA_COMPATIBILITY={level} is not a compatibility level; "
                f"type one of {', '.join(COMPATIBILITY_LEVELS)}."
            )
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


def fetch_tarball(name: str, coordinate: str) -> Path:
    """Download one tar.gz artifact with Maven and unpack it into a cached folder, once."""
    target = cache_root() / name / "app"
    if (target / ".complete").exists():
        return target
    work = target.parent
    downloads = work / "download"
    shutil.rmtree(downloads, ignore_errors=True)
    say(f"Fetching {name} from Maven Central (first run only; cached in {work})")
    run_maven([f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={coordinate}", f"-DoutputDirectory={downloads}"])
    staging = work / "app.partial"
    shutil.rmtree(staging, ignore_errors=True)
    for archive in downloads.glob("*.tar.gz"):
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # refuses links and paths that leave the folder
                tar.extractall(staging, filter="data")
            else:
                tar.extractall(staging)  # Python < 3.11.4: a Maven-verified artifact from Maven Central
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    shutil.rmtree(downloads, ignore_errors=True)
    (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return target


PIECES: dict[str, type[Piece]] = {"kafka": Kafka, "registry": Registry}


# --- the stack ---------------------------------------------------------------------------------------


class Stack:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir.resolve()
        self.state_file = self.dir / "state.json"

    def load(self) -> dict[str, dict[str, object]]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def save(self, state: dict[str, dict[str, object]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def running(self, name: str) -> dict[str, object] | None:
        entry = self.load().get(name)
        if entry and alive(int(str(entry["pid"])), str(self.dir)):
            return entry
        return None

    def up(self, names: list[str]) -> dict[str, str]:
        with self.locked():
            settings: dict[str, str] = {}
            for name in names:
                settings |= self.start(PIECES[name](self.dir))
            return settings

    def start(self, piece: Piece) -> dict[str, str]:
        entry = self.running(piece.name)
        if entry is not None:
            ports = {k: int(v) for k, v in dict(entry["ports"]).items()}  # type: ignore[call-overload]
            if piece.ready(ports):
                say(f"{piece.name} already running (pid {entry['pid']}, log {entry['log']})")
                return piece.settings(ports)
            self.stop_piece(piece.name, entry)
        piece.install()
        shutil.rmtree(piece.home, ignore_errors=True)
        piece.home.mkdir(parents=True)
        ports = {name: free_port() for name in piece.port_names()}
        piece.prepare(ports)
        started = time.monotonic()
        with piece.log.open("ab") as log:
            proc = subprocess.Popen(
                piece.command(ports),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=piece.home,
                start_new_session=True,
            )
        state = self.load()
        state[piece.name] = {"pid": proc.pid, "ports": ports, "log": str(piece.log)}
        self.save(state)
        deadline = started + READY_TIMEOUT_S
        while not piece.ready(ports):
            if proc.poll() is not None:
                raise StackError(
                    f"{piece.name} exited with {proc.returncode} while starting; see {piece.log}:\n{tail(piece.log)}"
                )
            if time.monotonic() > deadline:
                self.stop_piece(piece.name, state[piece.name])
                raise StackError(
                    f"{piece.name} was not ready after {READY_TIMEOUT_S:.0f} s; see {piece.log}:\n{tail(piece.log)}"
                )
            time.sleep(0.2)
        piece.configure(ports)
        say(f"{piece.name} ready in {time.monotonic() - started:.1f} s (pid {proc.pid}, log {piece.log})")
        return piece.settings(ports)

    def down(self, keep_data: bool) -> None:
        with self.locked():
            state = self.load()
            for name in reversed(list(state)):
                self.stop_piece(name, state[name])
                say(f"{name} stopped")
                if not keep_data:
                    shutil.rmtree(self.dir / name, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)

    def stop_piece(self, name: str, entry: dict[str, object]) -> None:
        stop_process(int(str(entry["pid"])), str(self.dir), name)
        state = self.load()
        state.pop(name, None)
        self.save(state)

    def settings(self) -> dict[str, str]:
        settings: dict[str, str] = {}
        for name in self.load():
            entry = self.running(name)
            if entry is None:
                raise StackError(f"{name} is not running; start the stack with `up`.")
            ports = {k: int(v) for k, v in dict(entry["ports"]).items()}  # type: ignore[call-overload]
            settings |= PIECES[name](self.dir).settings(ports)
        if not settings:
            raise StackError(f"No stack is running from {self.dir}; start it with `up`.")
        return settings

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise `up` and `down` across processes (parallel test runs share one stack)."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return "(no log)"


def print_settings(settings: dict[str, str], export: bool) -> None:
    prefix = "export " if export else ""
    for key, value in settings.items():
        print(f"{prefix}{key}={value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("KAFKA_STACK_DIR", ".stack")),
        help="where state, data and logs live (default: $KAFKA_STACK_DIR or ./.stack)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack (idempotent) and print its settings")
    up.add_argument(
        "--with",
        dest="extra",
        default="",
        help=f"comma-separated extra pieces ({', '.join(p for p in PIECES if p != 'kafka') or 'none yet'})",
    )
    up.add_argument("--export", action="store_true", help="prefix settings with `export`")
    down = commands.add_parser("down", help="stop what `up` started and delete its data")
    down.add_argument("--keep-data", action="store_true", help="keep topic data for the next `up`")
    env = commands.add_parser("env", help="print the settings of the running stack")
    env.add_argument("--export", action="store_true", help="prefix settings with `export`")
    commands.add_parser("status", help="show what runs, where, and its log file")
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir)
    try:
        if args.command == "up":
            extra = [name.strip() for name in args.extra.split(",") if name.strip()]
            unknown = [name for name in extra if name not in PIECES]
            if unknown:
                raise StackError(f"Unknown piece(s) {', '.join(unknown)}; choose from {', '.join(PIECES)}.")
            print_settings(stack.up(["kafka", *[n for n in extra if n != "kafka"]]), args.export)
        elif args.command == "down":
            stack.down(args.keep_data)
        elif args.command == "env":
            print_settings(stack.settings(), args.export)
        else:
            state = stack.load()
            if not state:
                say(f"nothing running from {stack.dir}")
                return 3
            code = 0
            for name, entry in state.items():
                running = stack.running(name) is not None
                code = code if running else 3
                ports = ", ".join(f"{k} 127.0.0.1:{v}" for k, v in dict(entry["ports"]).items())  # type: ignore[call-overload]
                print(
                    f"{name:10} {'running' if running else 'STOPPED'}  pid {entry['pid']}  {ports}  log {entry['log']}"
                )
            return code
    except StackError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
