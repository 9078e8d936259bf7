"""Plain SQL migrations, applied in file name order, each once: `python -m <package> migrate` (a deploy step, and
`make migrate` locally). Safe to run again and from several pods at once: an advisory lock serialises them and
`schema_migrations` remembers what was applied.

Then each Debezium connector's publication and logical replication slot (connectors.captures()), where missing:
from then on the WAL keeps every change of the captured tables until the connector confirms it, so an outbox row
written before the connector first starts is still published. `migrate --drop-capture` drops them (after the
connectors are gone: `helm uninstall`)."""

import argparse
import asyncio
import logging
from pathlib import Path

import asyncpg

from .connectors import captures, slots
from .settings import get_database_settings

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
            await ensure_capture(connection)
            return done
        finally:
            await connection.execute(f"SELECT pg_advisory_unlock({LOCK})")
    finally:
        await connection.close()


async def ensure_capture(connection: asyncpg.Connection) -> None:
    """Each connector's publication (exactly its tables) and logical replication slot (pgoutput), where missing.
    Outside any transaction: PostgreSQL creates no logical slot in a transaction that has written. Where the server
    can (PostgreSQL 17+), the slot is a failover slot, which a standby with sync_replication_slots keeps."""
    failover = await connection.fetchval("SELECT current_setting('server_version_num')::int >= 170000")
    for name, tables in captures().items():
        listed = ", ".join(tables)
        if await connection.fetchval("SELECT 1 FROM pg_publication WHERE pubname = $1", name):
            await connection.execute(f'ALTER PUBLICATION "{name}" SET TABLE {listed}')
        else:
            await connection.execute(f'CREATE PUBLICATION "{name}" FOR TABLE {listed}')
            log.info("created publication %s", name)
        if not await connection.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", name):
            if failover:
                await connection.execute(
                    "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)", name
                )
            else:
                await connection.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", name)
            log.info("created replication slot %s", name)


async def drop_capture(url: str, timeout_seconds: float = 30.0) -> list[str]:
    """Drop each connector's replication slot and publication (after the connectors are gone); return the slots."""
    connection = await asyncpg.connect(url, timeout=timeout_seconds, command_timeout=timeout_seconds)
    try:
        dropped = []
        for name in slots():
            active = await connection.fetchval(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active", name
            )
            if active is not None:
                raise RuntimeError(f"replication slot {name} is in use by pid {active}: delete the connector first")
            if await connection.fetchval("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", name):
                await connection.execute("SELECT pg_drop_replication_slot($1)", name)
                dropped.append(name)
            await connection.execute(f'DROP PUBLICATION IF EXISTS "{name}"')
        return dropped
    finally:
        await connection.close()


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--drop-capture",
        action="store_true",
        help="drop the connectors' replication slots and publications instead (after helm uninstall)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    database = get_database_settings()
    if database.url is None:
        parser.error("set DATABASE_URL (postgresql://user:password@host:port/database)")
    if args.drop_capture:
        dropped = asyncio.run(drop_capture(database.url.get_secret_value(), database.timeout_seconds))
        print(f"dropped {', '.join(dropped)}" if dropped else "no replication slot to drop")
        return 0
    applied = asyncio.run(migrate(database.url.get_secret_value(), database.timeout_seconds))
    print(f"applied {', '.join(applied)}" if applied else "the database is up to date")
    return 0
