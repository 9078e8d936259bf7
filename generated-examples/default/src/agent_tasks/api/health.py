"""Probes for the orchestrator: liveness never touches Kafka, readiness does."""

from fastapi import APIRouter, Request, Response, status

from ..kafka.health import check_readiness

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request, response: Response) -> dict[str, object]:
    state = request.app.state
    readiness = await check_readiness(state.producer, state.runner, state.settings.ready_timeout_seconds)
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {
        "ready": readiness.ready,
        "broker": readiness.broker,
        "consumer": readiness.consumer,
        "lag": readiness.lag,
    }
