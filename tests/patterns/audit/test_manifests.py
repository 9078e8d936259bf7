"""The audit log's objects in the chart: its sealer's Deployment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.manifests.helpers import helm_template
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


def test_the_audit_sealer_is_stopped_before_its_replacement_starts(tmp_path: Path, helm: str) -> None:
    """The sealer is a singleton: a rolling update's surge would run two, each fencing the other's transactional
    ids. Recreate stops the old pod first."""
    project = render(variant_answers("agent-patterns"), tmp_path / "project")
    resources = helm_template(helm, project)
    (sealer,) = [d for key, d in resources.items() if key.startswith("Deployment/") and key.endswith("-audit-sealer")]
    assert sealer["spec"]["replicas"] == 1
    assert sealer["spec"]["strategy"] == {"type": "Recreate"}
