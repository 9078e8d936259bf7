"""PostgreSQL with logical decoding: server binaries from Maven Central, run in the foreground."""

from __future__ import annotations

import os
import platform
import shutil
import stat
import sys
import tarfile
import time
import zipfile
from pathlib import Path

from .errors import StackError
from .maven import resolve_jars
from .paths import cache_lock, cache_root
from .pgwire import postgres_accepts
from .piece import Piece
from .processes import run_quietly
from .versions import POSTGRES_VERSION

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
