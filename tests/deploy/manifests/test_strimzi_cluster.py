"""The Strimzi Kafka cluster of both profiles: node pools spread over zones, one cluster name and one Kafka version,
and authorization on exactly when the `security` answer makes the service authenticate."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests.helpers import (
    VARIANTS,
    Checked,
    answers_of,
    container,
    helm_template,
    launcher_of,
    service_config,
    strimzi_docs,
    the_deployment,
)
from tools.render import render, variant_answers

pytestmark = pytest.mark.k8s


@pytest.mark.parametrize("variant", VARIANTS)
def test_production_controllers_and_brokers_spread_over_zones(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    cluster = answers_of(out / variant)["kafka_cluster"]
    pools = strimzi_docs(out / variant, "production/kafka-node-pools.yaml")
    assert {tuple(pool["spec"]["roles"]) for pool in pools} == {("controller",), ("broker",)}
    for pool in pools:
        name = pool["metadata"]["name"]
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert pool["spec"]["replicas"] >= 3
        constraints = pool["spec"]["template"]["pod"]["topologySpreadConstraints"]
        (zone,) = [c for c in constraints if c["topologyKey"] == "topology.kubernetes.io/zone"]
        assert zone["whenUnsatisfiable"] == "DoNotSchedule", name
        assert zone["maxSkew"] == 1
        # Strimzi labels each pod with its pool: the spread counts this pool's pods only.
        assert zone["labelSelector"]["matchLabels"] == {"strimzi.io/cluster": cluster, "strimzi.io/pool-name": name}


def test_the_cluster_name_and_kafka_version_are_one_value_each(tmp_path: Path, helm: str) -> None:
    answers = {**variant_answers(VARIANTS[0]), "kafka_cluster": "orders-kafka", "security": "scram-tls"}
    project = render(answers, tmp_path / "project")
    strimzi = project / "deploy" / "strimzi"
    for path in sorted(strimzi.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Kafka":
                assert doc["metadata"]["name"] == "orders-kafka"
            elif doc and doc["kind"].startswith("Kafka"):
                assert doc["metadata"]["labels"]["strimzi.io/cluster"] == "orders-kafka", path
    # No trace of the default cluster name anywhere, the READMEs' prose and the manifests' comments included.
    text = "\n".join(p.read_text() for p in sorted(strimzi.rglob("*")) if p.is_file())
    assert "events-" not in text.replace("registry-events", "")
    # The registry reaches the named cluster on its TLS listener and trusts that cluster's CA.
    (kafka,) = strimzi_docs(project, "dev/kafka.yaml")
    (tls_port,) = [item["port"] for item in kafka["spec"]["kafka"]["listeners"] if item["name"] == "tls"]
    assert tls_port == 9093
    (registry,) = strimzi_docs(project, "schema-registry/deployment.yaml")
    env = {item["name"]: item for item in container(registry)["env"]}
    assert env["APICURIO_KAFKASQL_BOOTSTRAP_SERVERS"]["value"] == f"orders-kafka-kafka-bootstrap:{tls_port}"
    truststore_password = env["APICURIO_KAFKASQL_SECURITY_SSL_TRUSTSTORE_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert truststore_password["name"] == "orders-kafka-cluster-ca-cert"
    (cluster_ca,) = [item for item in registry["spec"]["template"]["spec"]["volumes"] if item["name"] == "cluster-ca"]
    assert cluster_ca["secret"]["secretName"] == "orders-kafka-cluster-ca-cert"
    resources = helm_template(helm, project, "--api-versions", "keda.sh/v1alpha1")
    assert service_config(resources)["data"]["KAFKA_BOOTSTRAP_SERVERS"].startswith("orders-kafka-kafka-bootstrap.")
    volumes = the_deployment(resources)["spec"]["template"]["spec"]["volumes"]
    assert {"secretName": "orders-kafka-cluster-ca-cert"}.items() <= volumes[-1]["secret"].items()
    # Both cluster profiles run the Kafka version the local stack runs, which the tests prove against.
    versions = {
        doc["spec"]["kafka"]["version"]
        for profile in ("dev", "production")
        for doc in strimzi_docs(project, f"{profile}/kafka.yaml")
    }
    assert versions == {launcher_of(project).KAFKA_VERSION}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_cluster_authorizes_exactly_when_the_service_authenticates(variant: str, checked: Checked) -> None:
    out, _, _ = checked
    project = out / variant
    security = answers_of(project).get("security", "none")
    for profile in ("dev", "production"):
        (kafka,) = strimzi_docs(project, f"{profile}/kafka.yaml")
        listeners = {listener["name"]: listener for listener in kafka["spec"]["kafka"]["listeners"]}
        authorization = kafka["spec"]["kafka"].get("authorization")
        # The registry's own listener, whatever the service uses.
        assert listeners["tls"]["authentication"] == {"type": "tls"}, profile
        if security == "none":
            assert authorization is None, profile
            assert listeners["plain"] == {"name": "plain", "port": 9092, "type": "internal", "tls": False}, profile
        else:
            assert authorization == {"type": "simple"}, f"{profile}: only Strimzi's own operators are super users"
            assert "plain" not in listeners, f"{profile}: no listener lets a client in unauthenticated"
            assert all(listener["tls"] for listener in listeners.values()), profile
        # One listener per way in: none the answer does not use.
        assert ("scram" in listeners) == (security == "scram-tls"), profile
    (registry_user,) = strimzi_docs(project, "schema-registry/kafka-user.yaml")
    assert ("authorization" in registry_user["spec"]) == (security != "none")
