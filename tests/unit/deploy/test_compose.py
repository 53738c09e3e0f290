"""deploy/compose.yaml is a valid Compose file (checked against the Compose Specification's
JSON Schema shipped in compose-spec/) that wires the laptop setup together as documented."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jsonschema
import orjson
from ruamel.yaml import YAML

from streamcoord.devtools.kafka import DEFAULT_KAFKA_VERSION

ROOT = Path(__file__).parents[3]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SCHEMA = Path(__file__).with_name("compose-spec") / "compose-spec.json"
SCHEMA_SHA256 = "49eb9a1e1de41315949f302f8e6221bb42acd6038977f7c0974e38596ec4cdf6"
STREAMCOORD_SERVICES = {"topics", "specs", "coordinator", "worker-shell", "worker-streaming",
                        "serve"}  # fmt: skip


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(COMPOSE.read_text())
    return loaded


def _errors(document: dict[str, Any]) -> list[str]:
    schema = orjson.loads(SCHEMA.read_bytes())
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_shipped_schema_is_the_documented_copy() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert _errors(_compose()) == []


def test_the_schema_check_catches_a_broken_service() -> None:
    broken = _compose()
    broken["services"]["coordinator"]["depends_on"] = {"specs": {"condition": "whenever"}}
    broken["services"]["serve"]["restart_policy"] = "always"
    errors = "\n".join(_errors(broken))
    assert "['services', 'coordinator', 'depends_on']" in errors
    assert "'restart_policy' was unexpected" in errors


def test_the_laptop_setup_has_every_part() -> None:
    services = _compose()["services"]
    assert {"kafka", "jaeger"} | STREAMCOORD_SERVICES == set(services)
    assert services["kafka"]["image"] == f"apache/kafka:{DEFAULT_KAFKA_VERSION}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in STREAMCOORD_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Containerfile", name
        assert (COMPOSE.parent / service["build"]["context"] / "deploy" / "Containerfile").is_file()
        assert service["read_only"] is True, name
        assert service["environment"]["STREAMCOORD_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    all_interfaces = "0.0.0.0"  # noqa: S104 - inside the container's own network namespace
    assert services["serve"]["command"] == ["serve", "--host", all_interfaces, "--port", "8080"]


def test_the_coordinator_starts_after_topics_and_specs_exist() -> None:
    services = _compose()["services"]
    assert services["topics"]["command"] == ["topics", "apply"]
    assert services["specs"]["depends_on"]["topics"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["coordinator"]["depends_on"]["specs"]["condition"] == (
        "service_completed_successfully"
    )
    mounted = services["specs"]["volumes"][0].split(":")[0]
    assert (COMPOSE.parent / mounted).resolve() == ROOT / "examples"


def test_published_ports_listen_on_loopback_only() -> None:
    for name, service in _compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
