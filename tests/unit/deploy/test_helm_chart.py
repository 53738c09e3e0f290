"""The Helm chart (deploy/helm/streamcoord): `helm lint` passes and the manifests `helm template`
renders are ones a cluster's admission rules accept: probes, resources and a non-root security
context on every container, secrets only by reference."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from streamcoord.events import topology

CHART = Path(__file__).parents[3] / "deploy" / "helm" / "streamcoord"
KUBE_VERSION = "1.30.0"
#: What a container binds so that probes and Services reach it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - inside a pod's own network namespace
SECRETISH = re.compile(r"(?i)password|passwd|secret|token|credential|private_?key")
SECURED = [
    "--set", "kafka.securityProtocol=SASL_SSL",
    "--set", "kafka.sasl.existingSecret=streamcoord-kafka",
    "--set", "kafka.sasl.usernameKey=username",
    "--set", "kafka.tls.existingSecret=cluster-ca",
    "--set", "kafka.tls.keyPasswordKey=key-password",
    "--set", "kafka.tls.certKey=user.crt",
    "--set", "kafka.tls.keyKey=user.key",
    "--set", "metrics.serviceMonitor.enabled=true",
]  # fmt: skip


def _helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _template(helm: Path, *args: str) -> list[dict[str, Any]]:
    result = _helm(helm, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in YAML(typ="safe", pure=True).load_all(result.stdout) if doc]


def _pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in manifests:
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def _containers(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    for where, pod in _pod_specs(manifests):
        for container in pod.get("initContainers", []) + pod["containers"]:
            yield f"{where}/{container['name']}", container, pod


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == kind}


@pytest.mark.parametrize("values", [[], SECURED], ids=["defaults", "sasl-ssl"])
def test_helm_lint_passes(helm: Path, values: list[str]) -> None:
    result = _helm(helm, "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", [[], SECURED], ids=["defaults", "sasl-ssl"])
def test_every_container_has_probes_resources_and_a_non_root_context(
    helm: Path, values: list[str]
) -> None:
    manifests = _template(helm, *values)
    containers = list(_containers(manifests))
    assert {where.split("/")[1] for where, _, _ in containers} == {
        "rel-streamcoord-coordinator", "rel-streamcoord-worker-shell",
        "rel-streamcoord-serve", "rel-streamcoord-ingest",
    }  # fmt: skip
    for where, container, pod in containers:
        assert container.get("livenessProbe"), f"{where}: no liveness probe"
        assert container.get("readinessProbe"), f"{where}: no readiness probe"
        resources = container.get("resources", {})
        assert resources.get("requests"), f"{where}: no resource requests"
        assert resources.get("limits"), f"{where}: no resource limits"
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["runAsUser"] != 0, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["capabilities"]["drop"] == ["ALL"], where
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        ports = {port["name"] for port in container.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports, f"{where}: {probe} port"


def test_probes_ask_the_health_endpoints_the_processes_serve(helm: Path) -> None:
    containers = {where.split("/")[1]: c for where, c, _ in _containers(_template(helm))}
    for name in ("rel-streamcoord-coordinator", "rel-streamcoord-worker-shell"):
        container = containers[name]
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == "health")
        host_var, port_var = (
            ("STREAMCOORD_HEALTH_HOST", "STREAMCOORD_HEALTH_PORT") if "coordinator" in name
            else ("STREAMCOORD_WORKER_HEALTH_HOST", "STREAMCOORD_WORKER_HEALTH_PORT")
        )  # fmt: skip
        assert env[host_var] == ALL_INTERFACES
        assert env[port_var] == str(port)
    for name in ("rel-streamcoord-serve", "rel-streamcoord-ingest"):
        assert containers[name]["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert containers["rel-streamcoord-serve"]["args"][:5] == [
        "serve", "--host", ALL_INTERFACES, "--port", "8080",
    ]  # fmt: skip


def test_coordinators_are_a_statefulset_whose_pod_names_are_their_instance_ids(
    helm: Path,
) -> None:
    manifests = _template(helm, "--set", "coordinator.replicas=3")
    (coordinator,) = _by_kind(manifests, "StatefulSet").values()
    assert coordinator["spec"]["replicas"] == 3
    assert coordinator["spec"]["serviceName"] in _by_kind(manifests, "Service")
    (container,) = coordinator["spec"]["template"]["spec"]["containers"]
    instance = next(e for e in container["env"] if e["name"] == "STREAMCOORD_INSTANCE_ID")
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["args"][0] == "run"


def test_every_workload_has_a_disruption_budget_that_selects_its_pods(helm: Path) -> None:
    manifests = _template(helm)
    budgets = _by_kind(manifests, "PodDisruptionBudget").values()
    selectors = [b["spec"]["selector"]["matchLabels"] for b in budgets]
    for where, pod in _pod_specs(manifests):
        workload = next(d for d in manifests if f"{d['kind']}/{d['metadata']['name']}" == where)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(s.items() <= labels.items() for s in selectors), f"{where}: no budget"
        assert pod["volumes"], where


def test_service_monitor_is_optional(helm: Path) -> None:
    assert not _by_kind(_template(helm), "ServiceMonitor")
    (monitor,) = _by_kind(_template(helm, *SECURED), "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_credentials_come_only_from_existing_secrets(helm: Path) -> None:
    manifests = _template(helm, *SECURED)
    assert not _by_kind(manifests, "Secret"), "the chart must not create Secrets from values"
    for where, container, pod in _containers(manifests):
        env = {e["name"]: e for e in container["env"]}
        for name, entry in env.items():
            if SECRETISH.search(name):
                assert "value" not in entry, f"{where}: {name} is a plain value"
        password = env["STREAMCOORD_KAFKA_SASL_PLAIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": "streamcoord-kafka", "key": "password"}
        key_password = env["STREAMCOORD_KAFKA_SSL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert key_password["name"] == "cluster-ca"
        assert env["STREAMCOORD_KAFKA_SSL_CAFILE"]["value"].startswith("/etc/streamcoord/tls/")
        tls = next(v for v in pod["volumes"] if v["name"] == "kafka-tls")
        assert tls["secret"]["secretName"] == "cluster-ca", where


def test_values_hold_no_secret_only_references_to_secrets() -> None:
    values = YAML(typ="safe", pure=True).load((CHART / "values.yaml").read_text())

    def walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield f"{path}.{key}", value
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}[{index}]")

    for path, value in walk(values, ""):
        key = path.rsplit(".", 1)[-1]
        if SECRETISH.search(key):
            # existingSecret names a Secret; *Key names an entry in it; imagePullSecrets
            # names Secrets: references, never the secret itself.
            assert key in {"existingSecret", "imagePullSecrets"} or key.endswith("Key"), path
            assert isinstance(value, (str, list)), path


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "kafka.sasl.password=hunter2"], "additional properties 'password'"),
        (["--set-json", 'extraEnv=[{"name":"DB_PASSWORD","value":"hunter2"}]'], "extraEnv"),
        (
            [
                "--set",
                "workers[0].extraEnv[0].name=API_TOKEN",
                "--set",
                "workers[0].extraEnv[0].value=hunter2",
            ],
            "extraEnv",
        ),
        (["--set", "kafka.securityProtocol=SASL_SSL"], "kafka.sasl.existingSecret"),
        (["--set", "containerSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
    ],
    ids=["sasl-password", "extra-env-password", "worker-env-token", "sasl-no-secret", "root"],
)
def test_plain_secrets_and_root_are_refused(helm: Path, values: list[str], message: str) -> None:
    result = _helm(helm, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, *values)
    assert result.returncode != 0
    assert message in result.stderr
    assert "hunter2" not in result.stdout


def test_a_settings_file_from_a_secret_replaces_the_plain_kafka_values(helm: Path) -> None:
    manifests = _template(helm, "--set", "config.existingSecret=streamcoord-settings")
    for where, container, pod in _containers(manifests):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["STREAMCOORD_CONFIG"] == "/etc/streamcoord/config/streamcoord.toml", where
        assert "STREAMCOORD_KAFKA_BOOTSTRAP_SERVERS" not in env, where
        config = next(v for v in pod["volumes"] if v["name"] == "config")
        assert config["secret"]["secretName"] == "streamcoord-settings"


def test_each_worker_entry_is_a_deployment_with_its_own_group_of_options(helm: Path) -> None:
    workers = (
        '[{"name": "shell", "kind": "shell", "healthPort": 8082,'
        '  "topics": ["streamcoord.triggers"],'
        '  "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}},'
        ' {"name": "hooks", "kind": "webhook", "replicas": 0, "concurrency": 16,'
        '  "shutdownGrace": 10, "healthPort": 8083, "podDisruptionBudget": {"enabled": false},'
        '  "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}}]'
    )
    manifests = _template(helm, "--set-json", f"workers={workers}", "--set", "serve.enabled=false")
    deployments = _by_kind(manifests, "Deployment")
    assert set(deployments) == {
        "rel-streamcoord-worker-shell", "rel-streamcoord-worker-hooks", "rel-streamcoord-ingest",
    }  # fmt: skip
    shell, hooks = (
        deployments["rel-streamcoord-worker-shell"],
        deployments["rel-streamcoord-worker-hooks"],
    )
    assert shell["spec"]["replicas"] == 1
    assert hooks["spec"]["replicas"] == 0
    (shell_container,) = shell["spec"]["template"]["spec"]["containers"]
    assert shell_container["args"] == [
        "worker", "shell", "--concurrency", "4", "--shutdown-grace", "30",
        "--topic", topology.TRIGGERS,
    ]  # fmt: skip
    hooks_pod = hooks["spec"]["template"]["spec"]
    assert hooks_pod["terminationGracePeriodSeconds"] == 40
    assert hooks_pod["containers"][0]["args"][:4] == ["worker", "webhook", "--concurrency", "16"]
    budgets = set(_by_kind(manifests, "PodDisruptionBudget"))
    assert "rel-streamcoord-worker-shell" in budgets
    assert "rel-streamcoord-worker-hooks" not in budgets
    assert "rel-streamcoord-serve" not in budgets
