"""Correlation and causation: which unit of work an event belongs to, and which message caused it.

Every event carries both as headers. An HTTP request brings its correlation id in `X-Correlation-ID` (or is
given a new one, returned in the response); a consumed record brings its own, and is the cause of whatever
handling it publishes. Both live in context variables, so log lines and events sent while handling carry them
without being passed from call to call.
"""

import logging
import re
import uuid
from collections.abc import Iterable
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER = "correlation-id"
CAUSATION_HEADER = "causation-id"
HTTP_HEADER = "X-Correlation-ID"

# What a caller may pass: an id, not free text that would end up in every log line of the work.
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_correlation: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_causation: ContextVar[str | None] = ContextVar("causation_id", default=None)


def correlation_id() -> str | None:
    return _correlation.get()


def causation_id() -> str | None:
    return _causation.get()


def begin(correlation: str | None = None) -> str:
    """Start a unit of work with `correlation` when it is a valid id, else a new one; returns the id in use.
    The work itself (the request) is the cause of the first events it publishes."""
    chosen = correlation if correlation and _VALID.fullmatch(correlation) else str(uuid.uuid4())
    _correlation.set(chosen)
    _causation.set(chosen)
    return chosen


def adopt(headers: Iterable[tuple[str, bytes | None]]) -> None:
    """Continue the work a consumed record belongs to: its correlation id, and its event id as the cause.
    A record without a correlation id (from an older producer) starts its own work, named by its event id.

    Headers come from whoever wrote the record: a value that is null, not UTF-8 or not an id is ignored (it would
    otherwise travel in every log line and every emitted event's headers)."""
    correlation: bytes | None = None
    event_id: bytes | None = None
    # Once per consumed record: only the two headers it needs are decoded.
    for name, value in headers or ():
        if name == CORRELATION_HEADER:
            correlation = value
        elif name == "event-id":
            event_id = value
    cause = _valid_id(event_id)
    begin(_valid_id(correlation) or cause)
    if cause is not None:
        _causation.set(cause)


def _valid_id(value: bytes | None) -> str | None:
    if not isinstance(value, bytes) or len(value) > 128:
        return None
    text = value.decode("utf-8", "replace")
    return text if _VALID.fullmatch(text) else None


Ids = tuple[str | None, str | None]


def current() -> Ids:
    """The correlation and causation ids in use, to `resume` them in another task."""
    return _correlation.get(), _causation.get()


def resume(ids: Ids) -> None:
    """Continue, in this task, the work `current` was taken from."""
    _correlation.set(ids[0])
    _causation.set(ids[1])


def outgoing(event_id: str, cause_id: str | None = None) -> list[tuple[str, bytes]]:
    """The correlation headers of an event sent now. Outside any work the event starts its own: it is its
    own correlation and cause, as the first message of a conversation."""
    correlation = _correlation.get() or event_id
    causation = cause_id or _causation.get() or correlation
    return [(CORRELATION_HEADER, correlation.encode()), (CAUSATION_HEADER, causation.encode())]


class CorrelationMiddleware:
    """Begins each HTTP request's work with the caller's `X-Correlation-ID`, and answers with the id in use."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HTTP_HEADER.lower().encode())
        correlation = begin(given.decode("latin-1") if given else None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HTTP_HEADER.lower().encode(), correlation.encode())]
            await send(message)

        await self._app(scope, receive, send_with_id)


def install_log_records() -> None:
    """Give every log record a `correlation_id` attribute ("-" outside any work) for formats to show."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "correlated", False):
        return

    def correlated(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.correlation_id = _correlation.get() or "-"
        return record

    correlated.correlated = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(correlated)
