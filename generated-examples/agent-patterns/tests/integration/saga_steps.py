"""Step handlers that record what they do, for the saga's tests (and the template's chaos row), and a command line
that runs the orchestrator with them in a process of its own, to be killed:

    python -m tests.integration.saga_steps

Each saga's input steers its steps: `fail_at` names the handler that raises, `sleep` maps handlers to seconds. Every
call is appended to SAGA_TEST_LOG (a line "<saga id> <handler>" as it starts); every handler that completes sends
{"saga_id", "handler"} to SAGA_TEST_EFFECTS with `call.send`, in its outcome's transaction; the handler named by
SAGA_TEST_GATE_STEP waits until the file SAGA_TEST_GATE exists. SAGA_TEST_COMMANDS, SAGA_TEST_STATE and
SAGA_TEST_GROUP point the orchestrator at topics and a group of the test's own.
"""

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from agent_ops.patterns.saga import cli, names
from agent_ops.patterns.saga.machine import StepCall
from agent_ops.settings import get_settings


class RecordingSteps:
    def __init__(self, effects: str | None = None, log: Path | None = None, gate: tuple[str, Path] | None = None):
        self.effects = effects
        self.log = log
        self.gate = gate
        self.calls: list[tuple[str, str]] = []

    async def _do(self, call: StepCall) -> dict[str, Any] | None:
        self.calls.append((call.saga_id, call.handler))
        if self.log is not None:
            with self.log.open("a") as log:
                log.write(f"{call.saga_id} {call.handler}\n")
        if self.gate is not None and self.gate[0] == call.handler:
            while not self.gate[1].exists():  # noqa: ASYNC110 - a file another process creates, not an event
                await asyncio.sleep(0.05)
        await asyncio.sleep(float(call.input.get("sleep", {}).get(call.handler, 0)))
        if call.input.get("fail_at") == call.handler:
            raise RuntimeError(f"{call.handler} failed on purpose")
        if self.effects is not None:
            effect = {"saga_id": call.saga_id, "handler": call.handler}
            call.send(self.effects, json.dumps(effect).encode(), key=call.saga_id.encode())
        return {"by": call.handler}

    async def reserve_credits(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)

    async def release_credits(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)

    async def run_agent(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)

    async def discard_run(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)

    async def store_result(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)

    async def delete_result(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)

    async def notify(self, call: StepCall) -> dict[str, Any] | None:
        return await self._do(call)


def main() -> int:
    names.COMMANDS_TOPIC = os.environ.get("SAGA_TEST_COMMANDS", names.COMMANDS_TOPIC)
    names.STATE_TOPIC = os.environ.get("SAGA_TEST_STATE", names.STATE_TOPIC)
    names.GROUP = os.environ.get("SAGA_TEST_GROUP", names.GROUP)
    log = os.environ.get("SAGA_TEST_LOG")
    gate = os.environ.get("SAGA_TEST_GATE")
    steps = RecordingSteps(
        os.environ.get("SAGA_TEST_EFFECTS"),
        Path(log) if log else None,
        (os.environ["SAGA_TEST_GATE_STEP"], Path(gate)) if gate else None,
    )
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return asyncio.run(cli.run_until_stopped(settings, steps))


if __name__ == "__main__":
    sys.exit(main())
