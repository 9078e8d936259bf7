"""`python -m <package> worker` of a queue service (`delivery: queue`) whose handler plays an agent's task, for the
queue's chaos row (tools/chaos/queue_tasks.py); run with the generated project's interpreter (cwd = project):

    .venv/bin/python .../tools/chaos/queue_worker.py <package>

Each handler call sleeps a time drawn from CHAOS_TASK_MS ("50-500": uniform between the two, or one number), then
ends as the task's event id says (`outcome`, the same function the row judges with): most tasks emit one event on
the topic the queue emits to, CHAOS_FAILING_PER_MILLE of them fail on every delivery with a retryable error, and
CHAOS_PERMANENT_PER_MILLE raise the service's `Permanent`. With CHAOS_JOURNAL (a directory), each call appends
`start <time> <event id> <CHAOS_WORKER> <ms>` as it starts and `finish`/`fail` as it ends, flushed as written, to a
file of the process's own: the row reads which task each worker has in flight, and how many times a task was run.
These knobs live here, in the chaos tool, not in the service.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import random
import sys
import uuid
from typing import Any

OK, FAILING, PERMANENT = "ok", "failing", "permanent"


def outcome(event_id: str, failing_per_mille: int, permanent_per_mille: int) -> str:
    """How a task's handler ends on every delivery, from its event id alone."""
    draw = uuid.UUID(event_id).int % 1000
    if draw < failing_per_mille:
        return FAILING
    if draw < failing_per_mille + permanent_per_mille:
        return PERMANENT
    return OK


def duration_ms(spec: str) -> float:
    low, _, high = spec.partition("-")
    return random.uniform(float(low), float(high or low))


# The slow handlers' journal, one file per process (beside this script, so on its path).
Journal: Any = importlib.import_module("slow_worker").Journal


def agent(package: str, journal: Any) -> Any:
    models: Any = importlib.import_module(f"{package}.events.models")
    queue: Any = importlib.import_module(f"{package}.kafka.queue")
    spec = os.environ.get("CHAOS_TASK_MS", "100")
    failing = int(os.environ.get("CHAOS_FAILING_PER_MILLE", "0"))
    permanent = int(os.environ.get("CHAOS_PERMANENT_PER_MILLE", "0"))

    async def handle(topic: Any, event: Any) -> Any:
        ms = duration_ms(spec)
        journal.write("start", event, f" {ms:.0f}")
        await asyncio.sleep(ms / 1000)
        ends = outcome(str(event.event_id), failing, permanent)
        if ends == OK:
            journal.write("finish", event)
            return [models.TaskFinished(task_id=event.task_id, agent=event.agent, outcome="done")]
        journal.write("fail", event)
        if ends == PERMANENT:
            raise queue.Permanent("the agent cannot run this task")
        raise RuntimeError("the model is overloaded")

    return handle


def main() -> int:
    package = sys.argv[1]
    sys.path.insert(0, os.getcwd())
    app: Any = importlib.import_module(f"{package}.app")
    cli = importlib.import_module(f"{package}.__main__")
    journal = Journal(os.environ.get("CHAOS_JOURNAL", ""), os.environ.get("CHAOS_WORKER", "worker"))
    create_runner = app.create_runner
    handle = agent(package, journal)

    def create_agent_runner(settings: Any, serde: Any, handler: Any, producer: Any, hooks: Any) -> Any:
        return create_runner(settings, serde, handle, producer, hooks)

    app.create_runner = create_agent_runner
    return int(cli.main(["worker"]))


if __name__ == "__main__":
    sys.exit(main())
