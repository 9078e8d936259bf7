"""The task_run saga's steps and compensations: yours. `copier update` never overwrites this file.

The orchestrator calls each handler with a StepCall. A handler may run more than once for one step (its process was
killed before the outcome was committed), so make its effects idempotent by `call.idempotency_key` (saga id and
step): pass it to the system you call, or write to Kafka with `call.send(...)`, which commits together with the
step's outcome. Raise to fail the step: the saga then compensates the steps completed before it, in reverse order.
A step that runs past its timeout is cut short, and what it did so far may have taken effect: it is compensated
too, first, with no result of its own in `call.results`, so a compensation must cope with an effect that may not
exist. A compensation that raises is tried again (SAGA_COMPENSATION_MAX_ATTEMPTS times) before the saga is marked
failed.
"""

import logging
from typing import Any

from .machine import StepCall

log = logging.getLogger(__name__)


class TaskRunSteps:
    async def reserve_credits(self, call: StepCall) -> dict[str, Any] | None:
        """Step 1 of 4; undone by release_credits. Finish within 30 s or the saga compensates."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return {"reserve_credits": call.idempotency_key}

    async def release_credits(self, call: StepCall) -> dict[str, Any] | None:
        """Undoes reserve_credits, whose result is call.results.get("reserve_credits"): absent when it timed out."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return None

    async def run_agent(self, call: StepCall) -> dict[str, Any] | None:
        """Step 2 of 4; undone by discard_run. Finish within 600 s or the saga compensates."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return {"run_agent": call.idempotency_key}

    async def discard_run(self, call: StepCall) -> dict[str, Any] | None:
        """Undoes run_agent, whose result is call.results.get("run_agent"): absent when it timed out."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return None

    async def store_result(self, call: StepCall) -> dict[str, Any] | None:
        """Step 3 of 4; undone by delete_result. Finish within 60 s or the saga compensates."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return {"store_result": call.idempotency_key}

    async def delete_result(self, call: StepCall) -> dict[str, Any] | None:
        """Undoes store_result, whose result is call.results.get("store_result"): absent when it timed out."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return None

    async def notify(self, call: StepCall) -> dict[str, Any] | None:
        """Step 4 of 4. Finish within 60 s or the saga compensates."""
        log.info("%s: %s for saga %s", call.action, call.handler, call.saga_id)
        return {"notify": call.idempotency_key}
