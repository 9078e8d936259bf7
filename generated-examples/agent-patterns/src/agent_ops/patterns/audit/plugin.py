"""The audit log as a plug-in: an entry with every event published and every record processed, the sealer in
this process where `AUDIT_SEAL_IN_PROCESS` is on (development), and the `audit` command."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ...plugins import Chosen, Command, Plugin, Running
from .cli import main
from .intake import record_processed, record_published
from .sealer import AuditSealer
from .settings import AuditSettings
from .topics import TOPICS


def plugin(settings: AuditSettings | None = None) -> Plugin:
    audit = settings or AuditSettings()  # read as the app is built, not cached

    @asynccontextmanager
    async def lifespan(running: Running) -> AsyncIterator[None]:
        if not audit.seal_in_process:
            yield
            return
        sealer = AuditSealer(running.settings, audit)
        await sealer.start()

        async def sealing(_timeout_seconds: float) -> bool:
            # Sealing now, not starting nor backing off to start over.
            return bool(sealer.up)

        # Supervised: its supervisor restarts it on any error; stopped, only a restart of the process helps.
        running.alive["audit sealer"] = lambda: sealer.running
        running.ready["sealer"] = sealing
        try:
            yield
        finally:
            await sealer.stop()

    def audit_command(argv: list[str], prog: str, chosen: Chosen) -> int:
        return main(argv, prog, chosen.topics)

    return Plugin(
        name="audit",
        commands=(Command("audit", "seal, verify or show the audit log (`audit --help` for more)", audit_command),),
        topics=TOPICS,
        lifespan=lifespan,
        on_published=record_published,
        on_processed=record_processed,
    )
