"""Probes for the orchestrator: liveness never touches Kafka, readiness does (and whatever a plug-in's readiness
check asks, such as a database it writes to)."""

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response, status

from ..kafka.health import Consumer, check_readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live(request: Request, response: Response) -> dict[str, str]:
    runner: Consumer | None = getattr(request.app.state, "runner", None)
    if runner is not None and not runner.running:
        # The consumer stopped on an error it cannot handle. The worker exits then; here only a restart brings it
        # back, and readiness alone would keep the pod unready, yet alive, for ever.
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "consumer stopped"}
    alive: dict[str, Callable[[], bool]] = getattr(request.app.state, "alive", {})
    for name, running in alive.items():
        if not running():
            # A plug-in's task in this process has stopped: only a restart of the process brings it back.
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return {"status": f"{name} stopped"}
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request, response: Response) -> dict[str, object]:
    state = request.app.state
    bound = state.settings.ready_timeout_seconds
    checks: dict[str, Callable[[float], Awaitable[bool]]] = getattr(state, "checks", {})
    try:
        # The metadata round trip and the lag lookups are each bounded by READY_TIMEOUT_SECONDS; together by
        # twice that, so that the probe (whose timeout the Helm chart sets above it) always gets an answer.
        async with asyncio.timeout(2 * bound):
            readiness, answers = await asyncio.gather(
                check_readiness(state.producer, state.runner, bound),
                asyncio.gather(*(check(bound) for check in checks.values())),
            )
    except TimeoutError:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"ready": False, "broker": False, "consumer": False} | dict.fromkeys(checks, False) | {"lag": {}}
    ready = readiness.ready and all(answers)
    named = dict(zip(checks, answers, strict=True))
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"ready": ready, "broker": readiness.broker, "consumer": readiness.consumer} | named | {"lag": readiness.lag}
