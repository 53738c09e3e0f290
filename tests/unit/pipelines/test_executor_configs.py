"""The dbt and Airflow executors' config in specs: validate checks it on their topics, the JSON
Schema describes it there, and elsewhere config stays free-form."""

from __future__ import annotations

import pytest

from streamcoord.events import topology
from streamcoord.pipelines import parse_specs
from streamcoord.pipelines.executor_checks import invalid_executor_configs
from streamcoord.pipelines.schema import spec_schema

SPEC = """\
pipelines:
  - name: shop
    defaults:
      executor:
        topic: streamcoord.triggers.dbt
        config: {project_dir: /srv/shop, selcet: [orders]}
    stages:
      - name: build
      - name: report
        executor:
          topic: streamcoord.triggers.airflow
          config:
            base_url: http://airflow:8080
            dag_id: report
            password: hunter2
      - name: shell
        executor:
          config: {command: "echo {run_key}", selcet: anything}
"""


def test_validate_names_each_invalid_field_where_it_is_written() -> None:
    problems = list(invalid_executor_configs(parse_specs(SPEC, "shop.yaml")))
    located = sorted((p.line, p.path, p.message.split(" (")[0]) for p in problems)
    assert located == [
        (6, "pipelines[0].defaults.executor.config.selcet", "Extra inputs are not permitted"),
        (15, "pipelines[0].stages[1].executor.config.password",
         "Input should be a valid dictionary or instance of SecretReference"),
    ]  # fmt: skip
    assert "a DbtExecutorConfig for topic streamcoord.triggers.dbt" in problems[0].message


def test_the_schema_applies_each_model_on_its_topic_only() -> None:
    schema = spec_schema()
    rules = schema["$defs"]["Executor"]["allOf"]
    by_topic = {
        rule["if"]["properties"]["topic"]["const"]: rule["then"]["properties"]["config"]["$ref"]
        for rule in rules
    }
    assert by_topic == {
        topology.DBT_TRIGGERS: "#/$defs/DbtExecutorConfig",
        topology.AIRFLOW_TRIGGERS: "#/$defs/AirflowExecutorConfig",
    }
    airflow = schema["$defs"]["AirflowExecutorConfig"]
    assert airflow["additionalProperties"] is False
    assert {"$ref": "#/$defs/SecretReference"} in airflow["properties"]["password"]["anyOf"]


@pytest.mark.parametrize("topic", [topology.TRIGGERS, "my.dbt.triggers"])
def test_config_on_other_topics_is_left_to_its_executor(topic: str) -> None:
    spec = SPEC.replace(topology.DBT_TRIGGERS, topic).replace(topology.AIRFLOW_TRIGGERS, topic)
    assert list(invalid_executor_configs(parse_specs(spec, "shop.yaml"))) == []
