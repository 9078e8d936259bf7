"""The Helm chart as a chart: named templates that carry its name, so that two generated charts live side by side
in one umbrella chart."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    VARIANTS,
    Checked,
    chart_of,
    container,
    service_deployments,
)

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_named_templates_carry_the_charts_name(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    chart = chart_of(out / variant)
    defined = {
        name
        for helpers in (chart / "templates").glob("_*.tpl")
        for name in re.findall(r'define "([^"]+)"', helpers.read_text())
    }
    assert defined
    assert all(name.startswith(chart.name + ".") for name in defined), defined
    for template in (chart / "templates").iterdir():
        used = set(re.findall(r'(?:include|template) "([^"]+)"', template.read_text()))
        assert used <= defined, (template.name, used - defined)


def test_two_generated_charts_live_in_one_umbrella_chart(checked: Checked, helm: str, tmp_path: Path) -> None:
    out, _, _ = checked
    charts = {chart_of(out / variant).name: chart_of(out / variant) for variant in VARIANTS}
    assert len(charts) >= 2, "the variants' charts need distinct names"
    umbrella = tmp_path / "umbrella"
    (umbrella / "charts").mkdir(parents=True)
    (umbrella / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "umbrella", "version": "0.1.0", "type": "application"})
    )
    from tools.k8s.check import readme_install_values

    required: list[str] = []  # what each project's README install command sets, under its subchart's name
    for variant in VARIANTS:
        chart = chart_of(out / variant)
        if (umbrella / "charts" / chart.name).exists():
            continue
        shutil.copytree(chart, umbrella / "charts" / chart.name)
        required += [f"{chart.name}.{arg}" if arg != "--set" else arg for arg in readme_install_values(out / variant)]
    proc = subprocess.run(
        [helm, "template", "shop", str(umbrella), "--api-versions", "keda.sh/v1alpha1", *required],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    deployments = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "Deployment"]
    # Each subchart renders with its own helpers: its own name, selector and image.
    services = service_deployments({f"Deployment/{d['metadata']['name']}": d for d in deployments})
    assert sorted(d["metadata"]["name"] for d in services) == sorted(f"shop-{name}" for name in charts)
    for deployment in services:
        name = deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        assert deployment["metadata"]["name"] == f"shop-{name}"
        assert container(deployment)["image"].rsplit("/", 1)[-1].startswith(f"{name}:")
