"""librdkafka's blocking calls, off the event loop: each client runs them, in order, on a thread of its own.

A daemon thread rather than an executor's: a call that outlives its caller (a close while no broker answers, which
librdkafka does not bound) must not keep the process from exiting, as an executor's threads would at exit."""

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    """One thread that runs the calls given to it one after another."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def submit(self, call: Callable[..., T], *args: Any) -> "Future[T]":
        future: Future[T] = Future()
        self._calls.put((future, call, args))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
            self._thread.start()
        return future

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` on the thread. Cancelling the caller skips the call if it has not begun; one under way
        runs to its end (librdkafka's calls cannot be interrupted), and the next calls wait for it."""
        return await asyncio.wrap_future(self.submit(call, *args))

    def stop(self) -> None:
        """End the thread once the calls given before are done."""
        if self._thread is not None:
            self._calls.put(None)
            self._thread = None

    def serve_waiting(self, wait_seconds: float = 0.0) -> None:
        """On the thread, from inside a call: run the calls given meanwhile, waiting up to `wait_seconds` for the
        first one (a call that waits for others, which only this thread may make, serves them so)."""
        try:
            item = self._calls.get(timeout=wait_seconds) if wait_seconds > 0 else self._calls.get_nowait()
        except queue.Empty:
            return
        while item is not None:
            self._run(*item)
            try:
                item = self._calls.get_nowait()
            except queue.Empty:
                return
        self._calls.put(None)  # a stop: for the serving loop to see once the call in hand returns

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            self._run(*item)

    @staticmethod
    def _run(future: "Future[Any]", call: Callable[..., Any], args: tuple[Any, ...]) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = call(*args)
        except BaseException as error:
            future.set_exception(error)
        else:
            future.set_result(result)
