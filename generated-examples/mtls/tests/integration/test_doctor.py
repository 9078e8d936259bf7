"""`doctor` against the real broker: a healthy cluster is reported healthy."""

import asyncio
import json
import os
import sys

import pytest

from .service import running_service, service_settings

pytestmark = pytest.mark.integration


async def test_healthy_topics_are_reported_healthy_and_doctor_exits_zero(kafka_bootstrap: str, unique: str) -> None:
    async with running_service(service_settings(kafka_bootstrap, unique)):  # its topics exist from here on
        doctor = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "cert_intake", "doctor", "--json"),
            env=os.environ | {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await doctor.communicate()
    report = json.loads(out)
    assert doctor.returncode == 0, json.dumps(report, indent=2)
    assert report["healthy"] is True
    assert [(f["check"], f["severity"]) for f in report["findings"]] == [("describe", "ok")]
