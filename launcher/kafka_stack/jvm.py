"""How the stack's JVMs start: their options (ours, then KAFKA_STACK_JAVA_OPTIONS), and class archives."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .paths import cache_root
from .state import Entry

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
