"""What a rendered project carries beside its manifests, read the way its users run it: the image build's lock
file, `make worker`, and the READMEs' curl examples."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    REPO,
    VARIANTS,
    Checked,
    answers_of,
)

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_image_build_has_a_lock_file_to_build_from(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    project = out / variant
    dockerfile = (project / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "source=uv.lock" in dockerfile
    assert "!uv.lock" in (project / ".dockerignore").read_text().splitlines()
    assert "uv.lock" not in (project / ".gitignore").read_text()
    # The generated README makes the lock before the image, and says to commit it.
    readme = (project / "README.md").read_text()
    assert readme.index("uv lock") < readme.index("docker build")
    assert "commit `uv.lock`" in readme


@pytest.mark.parametrize("variant", VARIANTS)
def test_make_worker_runs_against_the_local_stack(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    project = out / variant
    package = answers_of(project)["package_name"]
    # What make would run (`make -n` prints each command of the target, its variables expanded): a missing target
    # is make's error.
    proc = subprocess.run(["make", "-n", "worker"], cwd=project, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    (command,) = [line for line in proc.stdout.splitlines() if f"python -m {package} worker" in line]
    # Each line of a recipe is a shell of its own: the stack's settings are read in the worker's.
    assert ".stack.env" in command.split(f"python -m {package} worker", 1)[0], proc.stdout


def curl_example(readme: str) -> tuple[str, dict[str, Any], list[str]]:
    """The POST route, its JSON body and the GET paths (none where nothing is consumed) of a README's curl example."""
    (post,) = re.findall(r"curl -i -X POST http://127\.0\.0\.1:8000(/\S+) ", readme)
    (body,) = re.findall(r"-d '(\{.*\})'", readme)
    gets = re.findall(r"^curl http://127\.0\.0\.1:8000(/\S+)", readme, re.MULTILINE)
    return post, json.loads(body), gets


def check_curl_example(readme: str, spec: dict[str, Any]) -> None:
    post, body, gets = curl_example(readme)
    (topic,) = [t for t in spec["topics"] if t.get("route") == post]
    (event,) = [e for e in topic["events"] if e["name"] == body["type"]]
    required = {f["name"] for f in event["fields"] if not f.get("optional")}
    assert set(body) - {"type"} == required, "the body holds the event's required fields and its type"
    if topic.get("consumed", True):
        assert gets == [f"{post}/{body[topic['key']]}"], "GET reads back the key just posted"
    else:
        assert gets == [], "a topic the service does not consume has no read route"


def test_the_readmes_curl_example_fits_the_default_spec() -> None:
    readme = (REPO / "README.md").read_text()
    use_it = readme[readme.index("## Use it") : readme.index("## Work on it")]
    copier = yaml.safe_load((REPO / "copier.yml").read_text())
    check_curl_example(use_it, yaml.safe_load(copier["spec"]["default"]))
    assert "--defaults" in use_it
    assert "uvx --with copier-template-extensions copier copy --trust" in use_it


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_generated_readmes_curl_example_fits_its_spec(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    project = out / variant
    check_curl_example((project / "README.md").read_text(), answers_of(project)["spec"])
