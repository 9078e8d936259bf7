"""Plain SQL migrations, applied in file name order, each once: `python -m <package> migrate` (a deploy step, and
`make migrate` locally). Safe to run again and from several pods at once: an advisory lock serialises them and
`schema_migrations` remembers what was applied."""

import argparse
import asyncio
import logging
from pathlib import Path

import asyncpg

from ..settings import get_settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
LOCK = "hashtext('schema_migrations')"


def pending(applied: set[str]) -> list[Path]:
    return [path for path in sorted(MIGRATIONS.glob("*.sql")) if path.stem not in applied]


async def migrate(url: str, timeout_seconds: float = 30.0) -> list[str]:
    """Apply the migrations not applied yet, each in its own transaction; return their names."""
    connection = await asyncpg.connect(url, timeout=timeout_seconds, command_timeout=timeout_seconds)
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await connection.execute(f"SELECT pg_advisory_lock({LOCK})")
        try:
            rows = await connection.fetch("SELECT version FROM schema_migrations")
            done = []
            for path in pending({row["version"] for row in rows}):
                async with connection.transaction():
                    await connection.execute(path.read_text())
                    await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)
                log.info("applied migration %s", path.stem)
                done.append(path.stem)
            return done
        finally:
            await connection.execute(f"SELECT pg_advisory_unlock({LOCK})")
    finally:
        await connection.close()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if settings.database_url is None:
        parser.error("set DATABASE_URL (postgresql://user:password@host:port/database)")
    applied = asyncio.run(migrate(settings.database_url.get_secret_value(), settings.database_timeout_seconds))
    print(f"applied {', '.join(applied)}" if applied else "the database is up to date")
    return 0
