"""The rendered Kubernetes manifests, checked once for the session: every module of this folder reads the same
renders and the helm that checked them, so the folder goes whole to one pytest-xdist worker (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.deploy.manifests.helpers import (
    Checked,
    run_check,
)


@pytest.fixture(scope="session")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Every variant rendered (kept in a temporary folder) and checked once for the session."""
    out = tmp_path_factory.mktemp("k8s-variants")
    proc, report = run_check("--keep", str(out), report=out / "report.json")
    return out, proc, report


@pytest.fixture(scope="session")
def helm(checked: Checked) -> str:
    """The helm binary check.py installed (the `checked` fixture ran it once)."""
    from tools.k8s.check import HELM_VERSION, go_install

    return str(go_install("helm.sh/helm/v4/cmd/helm", HELM_VERSION, "helm"))
