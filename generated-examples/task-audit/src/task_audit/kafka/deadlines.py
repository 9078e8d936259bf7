"""Time bounds on handler attempts, enforced by one timer for the whole runner.

`asyncio.timeout` arms a timer per attempt; with fast handlers that timer costs more than the handler, and the
cancelled ones crowd the event loop's heap (a bound of minutes outlives thousands of attempts). Here an attempt
notes its deadline in a dict, and a sweep every tenth of the bound (at most every second) cancels the attempts past
theirs: an attempt is stopped between its bound and its bound plus one sweep interval.
"""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


class Deadlines:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._interval = min(1.0, seconds / 10)
        self._due: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    async def run(self, attempt: Awaitable[T]) -> T:
        """Await `attempt` in the current task; past the bound it is cancelled and this raises TimeoutError."""
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._due[task] = loop.time() + self.seconds
        if self._sweep is None:
            self._sweep = loop.call_later(self._interval, self._cancel_overdue)
        try:
            return await attempt
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # a cancellation from elsewhere (shutdown, a revoke): not ours to turn into a timeout
            task.uncancel()
            raise TimeoutError(f"the handler took longer than {self.seconds:g} s") from None
        finally:
            del self._due[task]
            self._expired.discard(task)

    def _cancel_overdue(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, due in self._due.items():
            if due <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._sweep = loop.call_later(self._interval, self._cancel_overdue) if self._due else None
