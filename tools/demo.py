"""`make demo`: the default service end to end on a real broker, in a scratch folder, then everything stopped.

Renders the template's defaults, installs the service, starts the project's own local stack, runs the service,
POSTs an agent task, shows the broker's acknowledgement and then the service's consumer processing it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from tools.render import render, variant_answers


def step(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError:
        return 0, {}


def wait_for(what: str, check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {within:.0f} s")
        time.sleep(0.2)


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="kafka-events-demo-"))
    project = scratch / "agent-tasks"
    step(f"Rendering the default service into {project}")
    render(variant_answers("default"), project)
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}

    step("Installing it (uv sync)")
    subprocess.run(["uv", "sync", "--quiet"], cwd=project, env=env, check=True)

    step("Starting the local Kafka stack (make stack-up; the first run fetches the jars from Maven Central)")
    subprocess.run(["make", "--no-print-directory", "stack-up"], cwd=project, env=env, check=True)
    stack_env = dict(
        line.removeprefix("export ").split("=", 1) for line in (project / ".stack.env").read_text().split("\n") if line
    )
    service = None
    log_path = project / "service.log"
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        step(f"Running the service on {base} (log: {log_path})")
        with log_path.open("w") as log:
            service = subprocess.Popen(
                ["uv", "run", "uvicorn", "--factory", "agent_tasks.main:create_app", "--port", str(port)],
                cwd=project,
                env=env | stack_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        running = service

        def ready() -> bool:
            if running.poll() is not None:
                raise SystemExit(f"the service exited with {running.returncode}; see {log_path}")
            return http("GET", f"{base}/health/ready")[0] == 200

        wait_for("the service to be ready", ready, within=90)
        print(f"GET /health/ready -> {http('GET', f'{base}/health/ready')[1]}")

        task_id = f"demo-{uuid.uuid4().hex[:8]}"
        task = {"type": "TaskCreated", "task_id": task_id, "agent": "researcher", "prompt": "Summarise KIP-848"}
        step(f"POST /tasks {json.dumps(task)}")
        status, accepted = http("POST", f"{base}/tasks", task)
        if status != 202:
            raise SystemExit(f"expected 202, got {status}: {accepted}")
        print(
            f"published: event {accepted['event_id']} acknowledged by the broker on "
            f"{accepted['topic']} partition {accepted['partition']} offset {accepted['offset']}"
        )

        step(f"GET /tasks/{task_id} until the service's consumer has processed it")
        wait_for("the event to be consumed", lambda: http("GET", f"{base}/tasks/{task_id}")[0] == 200, within=30)
        consumed = http("GET", f"{base}/tasks/{task_id}")[1]
        print(f"consumed: {consumed['type']} {consumed['event_id']} for task {consumed['task_id']}")
        handled = [line for line in log_path.read_text().splitlines() if task_id in line]
        print("service log:", *handled, sep="\n  ")
    finally:
        step("Stopping the service (SIGTERM: finish, commit, flush) and the stack")
        if service is not None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()
            print(*log_path.read_text().splitlines()[-3:], sep="\n")
        subprocess.run(["make", "--no-print-directory", "stack-down"], cwd=project, env=env, check=False)
    print(f"\nDone. The rendered project stays in {project} for a closer look.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
