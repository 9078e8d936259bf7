"""The audit sealer in the probes, without a broker: readiness waits for the sealer in the process to seal, and
liveness fails once it stopped."""

import httpx
import pytest

from agent_ops.main import create_app
from agent_ops.patterns.audit import plugin as audit_plugin
from agent_ops.patterns.audit.settings import AuditSettings
from agent_ops.plugins import Running
from tests.patterns import ready_fakes

from .test_health import SETTINGS, FakeProducer


class FakeSealer:
    def __init__(self, up: bool, running: bool = True) -> None:
        self.up = up
        self.running = running

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def get_with_sealer(sealer: FakeSealer, path: str, monkeypatch: pytest.MonkeyPatch) -> httpx.Response:
    """`path` of an app whose audit plug-in runs `sealer` in the process, as its lifespan wires it."""
    monkeypatch.setattr(audit_plugin, "AuditSealer", lambda settings, audit: sealer)
    lifespan = audit_plugin.plugin(AuditSettings(seal_in_process=True)).lifespan
    assert lifespan is not None
    running = Running(SETTINGS, None, FakeProducer(), None)  # type: ignore[arg-type]
    app = create_app(SETTINGS)  # lifespan not entered: the state is set here instead
    async with lifespan(running):
        app.state.settings = SETTINGS
        app.state.producer = FakeProducer()
        app.state.runner = None
        app.state.checks = running.ready | ready_fakes()  # the other patterns' own, each answering at once
        app.state.alive = running.alive
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get(path)


async def test_readiness_waits_for_the_audit_sealer_to_seal(monkeypatch: pytest.MonkeyPatch) -> None:
    down = await get_with_sealer(FakeSealer(up=False), "/health/ready", monkeypatch)
    assert down.status_code == 503
    assert down.json()["sealer"] is False
    up = await get_with_sealer(FakeSealer(up=True), "/health/ready", monkeypatch)
    assert up.status_code == 200, up.json()
    assert up.json()["sealer"] is True


async def test_liveness_fails_once_the_audit_sealer_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    response = await get_with_sealer(FakeSealer(up=False, running=False), "/health/live", monkeypatch)
    assert response.status_code == 503
    assert response.json() == {"status": "audit sealer stopped"}
    backing_off = await get_with_sealer(FakeSealer(up=False), "/health/live", monkeypatch)
    assert backing_off.status_code == 200, "backing off is alive"
