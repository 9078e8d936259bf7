"""De-duplication in one process: the runner lets a key's next record start while the previous one waits for its
acknowledgements, so a client's retry of the same event (same id, same key) may arrive meanwhile: it must be
skipped, never handled a second time."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from order_pipelines.processed import CheckThenRecord, InMemoryProcessedEvents, SqliteProcessedEvents


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckThenRecord]:
    if request.param == "memory":
        yield InMemoryProcessedEvents()
        return
    sqlite = SqliteProcessedEvents(str(tmp_path / "processed.db"))
    yield sqlite
    sqlite._db.close()


async def test_a_retry_arriving_while_the_first_is_not_recorded_yet_is_skipped(store: CheckThenRecord) -> None:
    event_id = uuid4()
    first_inside = asyncio.Event()
    first_may_leave = asyncio.Event()
    second_asked = asyncio.Event()
    first_answers: list[bool] = []

    async def first() -> None:
        async with store.once(event_id) as is_first:
            first_answers.append(is_first)
            first_inside.set()
            await first_may_leave.wait()

    async def retry() -> bool:
        entering = store.once(event_id)
        second_asked.set()
        async with entering as is_first:
            return is_first

    handling = asyncio.create_task(first())
    await first_inside.wait()
    retried = asyncio.create_task(retry())
    await second_asked.wait()
    await asyncio.sleep(0)  # the retry asks the store before the first one records its id
    first_may_leave.set()
    await handling
    assert first_answers == [True]
    assert await retried is False


async def test_an_id_left_unrecorded_by_a_failure_is_handled_by_the_retry(store: CheckThenRecord) -> None:
    event_id = uuid4()
    with pytest.raises(RuntimeError):
        async with store.once(event_id):
            raise RuntimeError("the handler failed")
    async with store.once(event_id) as is_first:
        assert is_first
