#!/usr/bin/env python3
"""Prometheus and promtool for the monitoring tests, from Debian's `prometheus` package.

    python -m tools.monitoring.prometheus     print the folder holding `prometheus` and `promtool`

The package is downloaded with `apt-get download` (after `apt-get update` when the package lists lack it) and
unpacked with `dpkg -x` into ~/.cache/kafka-events/prometheus-<version> (KAFKA_EVENTS_CACHE), never installed:
no service is started and nothing outside the cache is written. Its binaries are static Go programs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("KAFKA_EVENTS_CACHE") or Path.home() / ".cache" / "kafka-events")
PACKAGE = "prometheus"


class ToolError(Exception):
    """Prometheus could not be had on this machine."""


def candidate() -> str | None:
    """The version apt would download, or None when the package lists do not know the package."""
    policy = subprocess.run(["apt-cache", "policy", PACKAGE], capture_output=True, text=True).stdout
    match = re.search(r"Candidate:\s*(\S+)", policy)
    return match.group(1) if match and match.group(1) != "(none)" else None


def bin_dir() -> Path:
    """The folder with `prometheus` and `promtool`, fetched on first use."""
    for folder in sorted(CACHE.glob(f"{PACKAGE}-*/usr/bin"), reverse=True):
        if (folder / "promtool").exists() and (folder / "prometheus").exists():
            return folder
    if shutil.which("apt-get") is None:
        raise ToolError("needs apt-get (Debian or Ubuntu) to fetch Debian's prometheus package")
    version = candidate()
    if version is None:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        version = candidate()
    if version is None:
        raise ToolError("apt knows no `prometheus` package")
    target = CACHE / f"{PACKAGE}-{re.sub(r'[^A-Za-z0-9.+-]', '_', version)}"
    with tempfile.TemporaryDirectory() as download:
        os.chmod(download, 0o755)  # apt drops to its own user to write the download
        subprocess.run(["apt-get", "download", "-qq", f"{PACKAGE}={version}"], cwd=download, check=True)
        (deb,) = Path(download).glob("*.deb")
        unpacked = Path(download) / "root"
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(unpacked), str(target))
    return target / "usr" / "bin"


def main() -> int:
    try:
        print(bin_dir())
    except (ToolError, subprocess.CalledProcessError) as error:
        print(f"prometheus: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
