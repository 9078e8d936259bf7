"""Maven: the machine's `mvn`, else Apache Maven from Maven Central; jars and tarballs fetched with it, cached."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from contextlib import suppress
from pathlib import Path

from .downloads import DOWNLOADED, download, megabytes, unpack_tarball
from .errors import StackError, say
from .java import find_java, flag, hidden, java_home, java_trust_options
from .paths import cache_lock, cache_root
from .versions import DEPENDENCY_PLUGIN, MAVEN_VERSION

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
