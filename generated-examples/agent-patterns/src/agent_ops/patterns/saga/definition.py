"""The task_run saga as spec.saga declares it: its steps in order, and the handlers they call.
Generated from the spec (spec.yml); `copier update` regenerates it. The handlers themselves are yours, in steps.py."""

from typing import Any, Protocol

from .machine import StepCall, StepSpec

STEPS: tuple[StepSpec, ...] = (
    StepSpec("reserve_credits", "release_credits", 30),
    StepSpec("run_agent", "discard_run", 600),
    StepSpec("store_result", "delete_result", 60),
    StepSpec("notify", None, 60),
)


class Steps(Protocol):
    """What the orchestrator calls: one coroutine per step and per compensation. A step returns what later steps
    and its compensation should know (kept in the saga's state as `results[<step>]`), or None."""

    async def reserve_credits(self, call: StepCall) -> dict[str, Any] | None: ...

    async def release_credits(self, call: StepCall) -> dict[str, Any] | None: ...

    async def run_agent(self, call: StepCall) -> dict[str, Any] | None: ...

    async def discard_run(self, call: StepCall) -> dict[str, Any] | None: ...

    async def store_result(self, call: StepCall) -> dict[str, Any] | None: ...

    async def delete_result(self, call: StepCall) -> dict[str, Any] | None: ...

    async def notify(self, call: StepCall) -> dict[str, Any] | None: ...
