"""The AsyncAPI contract (asyncapi.yaml): what the app serves, what the code does, and what the official parser says."""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

from agent_tasks.events.avro import load_schema
from agent_tasks.events.catalog import CONSUMED_TOPICS, TOPICS
from agent_tasks.kafka.producer import event_headers
from agent_tasks.main import chosen_plugins, create_app
from agent_tasks.plugins import chosen
from agent_tasks.settings import Settings
from tests.samples import sample_event

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "asyncapi.yaml"
TOOLS = ROOT / "tools" / "asyncapi"


def contract() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text())
    return loaded


def test_the_app_serves_asyncapi_yaml() -> None:
    response = TestClient(create_app(Settings())).get("/asyncapi.json")  # not entered: no lifespan, so no broker
    assert response.status_code == 200
    assert response.json() == contract()


def test_every_topic_the_service_uses_is_a_channel() -> None:
    addresses = {channel["address"] for channel in contract()["channels"].values()}
    used = {topic.name for topic in TOPICS} | {topic.dead_letter for topic in TOPICS if topic.consumed}
    used |= {topic.name for topic in chosen(chosen_plugins()).topics}
    assert addresses == used


def test_each_event_payload_is_its_avro_schema_and_partitions_match() -> None:
    document = contract()
    channels = {channel["address"]: channel for channel in document["channels"].values()}
    for topic in TOPICS:
        assert channels[topic.name]["bindings"]["kafka"]["partitions"] == topic.partitions
        for event_type in topic.event_types:
            message = document["components"]["messages"][event_type.__name__]
            payload = document["components"]["schemas"][event_type.__name__]
            assert message["payload"] == {"$ref": f"#/components/schemas/{event_type.__name__}"}
            assert payload["schema"] == load_schema(event_type)


def test_the_headers_are_those_the_producer_sets() -> None:
    declared = set(contract()["components"]["schemas"]["EventHeaders"]["required"])
    for topic in TOPICS:
        for event_type in topic.event_types:
            assert {name for name, _ in event_headers(sample_event(topic, event_type))} == declared


def test_each_consumed_topic_is_received_by_the_services_group() -> None:
    document = contract()
    channel_ids = {channel["address"]: name for name, channel in document["channels"].items()}
    for topic in CONSUMED_TOPICS:
        groups = {
            operation["bindings"]["kafka"]["groupId"]["const"]
            for operation in document["operations"].values()
            if operation["action"] == "receive"
            and operation["channel"]["$ref"] == f"#/channels/{channel_ids[topic.name]}"
        }
        assert Settings().kafka_consumer_group in groups


def test_the_official_asyncapi_parser_finds_no_error_or_warning() -> None:
    node = shutil.which("node")
    assert node is not None, (
        "Node.js 18.18+ is needed to validate asyncapi.yaml: install nodejs and npm, then `make install`"
    )
    assert (TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is not installed: `make install` (npm ci in tools/asyncapi)"
    )
    result = subprocess.run(
        [node, str(TOOLS / "validate.mjs"), str(DOCUMENT)], capture_output=True, text=True, timeout=300, check=False
    )
    diagnostics = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    failing = [d for d in diagnostics if d["severity"] in {"error", "warning"}]
    assert not failing, "\n".join(map(str, failing))
    assert result.returncode == 0, result.stderr
