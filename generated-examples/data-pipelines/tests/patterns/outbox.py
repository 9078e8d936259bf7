"""The outbox's part of the shared tests: the readiness check its lifespan adds, on the database."""

from tests.patterns.support import PatternSupport


async def database_answers(timeout_seconds: float) -> bool:
    """The outbox's database, answering at once."""
    return True


SUPPORT = PatternSupport(ready_fakes={"database": database_answers})
