"""What tests/deploy/chart_processes.py needs to know about the database plug-in to run its chart's processes."""

from __future__ import annotations

import urllib.parse
from typing import Any


def readme_secrets(
    values: dict[str, Any], answers: dict[str, Any], stack: dict[str, str]
) -> dict[str, dict[str, bytes]]:
    """The Secrets the README says to create for it: the database's address and login, from the stack's PostgreSQL."""
    if "database" not in values:
        return {}
    url = stack["DATABASE_URL"]
    parsed = urllib.parse.urlsplit(url)
    return {
        values["database"]["secret"]: {
            "url": url.encode(),
            "host": (parsed.hostname or "").encode(),
            "port": str(parsed.port).encode(),
            "user": (parsed.username or "").encode(),
            "password": (parsed.password or "").encode(),
            "dbname": parsed.path.lstrip("/").encode(),
        }
    }
