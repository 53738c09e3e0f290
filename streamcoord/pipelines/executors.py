"""The ``executor.config`` of the built-in executors for existing systems: dbt and Airflow.

``executor.config`` stays free-form JSON in :class:`~streamcoord.pipelines.models.Executor` (any
executor may define its own); these models are what the ``dbt`` and ``airflow`` workers accept,
so the workers validate a trigger's config with them (an invalid one fails the attempt for good,
naming the field) and the spec's JSON Schema describes their fields for editors. Credentials are
secret references (``{secret: {env: NAME}}``), resolved on the worker; see
:mod:`streamcoord.pipelines.secrets`.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from streamcoord.events import topology
from streamcoord.pipelines.secrets import SecretReference

__all__ = [
    "AIRFLOW_TRIGGER_TOPIC",
    "DBT_TRIGGER_TOPIC",
    "EXECUTOR_CONFIGS",
    "AirflowExecutorConfig",
    "DbtCommand",
    "DbtExecutorConfig",
    "EnvValue",
]

#: Default executor topics of the two workers (declared in ``streamcoord/events/topics.yaml``).
DBT_TRIGGER_TOPIC: Final = topology.DBT_TRIGGERS
AIRFLOW_TRIGGER_TOPIC: Final = topology.AIRFLOW_TRIGGERS

DbtCommand = Literal["build", "run", "test", "seed", "snapshot"]
#: A value of an environment map: plain, or a secret the worker reads.
EnvValue = str | int | float | bool | SecretReference


class _Config(BaseModel):
    # Unknown keys are errors: a misspelt `selcet` must not silently build the whole project.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DbtExecutorConfig(_Config):
    """``streamcoord worker dbt``: run a dbt command for the selected nodes of a project."""

    project_dir: str = Field(min_length=1, description="The dbt project's directory on the worker.")
    profiles_dir: str | None = Field(
        None, description="Where profiles.yml is (default: dbt's own lookup)."
    )
    command: DbtCommand = Field("build", description="The dbt command to run.")
    select: list[str] = Field(
        default_factory=list, description="dbt `--select` arguments (none: the whole project)."
    )
    exclude: list[str] = Field(default_factory=list, description="dbt `--exclude` arguments.")
    selector: str | None = Field(None, description="A YAML selector of the project (`--selector`).")
    target: str | None = Field(None, description="The profile target (`--target`).")
    vars: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="dbt `--vars`; the stage's params are added on top when `params_as_vars`.",
    )
    params_as_vars: bool = Field(True, description="Pass the stage's params as dbt vars.")
    full_refresh: bool = False
    threads: int | None = Field(None, ge=1)
    env: dict[str, EnvValue] = Field(
        default_factory=dict,
        description="Environment of the dbt process (profiles read it with env_var()).",
    )
    timeout_seconds: float | None = Field(
        None, gt=0, description="Stop dbt after this long (a retryable failure)."
    )
    kill_grace_seconds: float | None = Field(
        None, gt=0, description="Seconds between SIGTERM and SIGKILL when dbt is stopped."
    )


class AirflowExecutorConfig(_Config):
    """``streamcoord worker airflow``: trigger a DAG run through Airflow 3's REST API and follow
    it to its end."""

    base_url: str = Field(
        min_length=1, description="The Airflow API server, e.g. http://airflow:8080."
    )
    dag_id: str = Field(min_length=1)
    conf: dict[str, JsonValue] = Field(
        default_factory=dict, description="DAG run conf; the stage's params are added on top."
    )
    username: str | SecretReference | None = Field(
        None, description="User for POST /auth/token (with `password`)."
    )
    password: SecretReference | None = Field(None, description="Its password: a secret reference.")
    token: SecretReference | None = Field(
        None, description="A bearer token to send instead of logging in: a secret reference."
    )
    poll_interval_seconds: float = Field(
        5.0, gt=0, description="Seconds between looks at the DAG run's state."
    )
    unpause: bool = Field(False, description="Unpause the DAG if it is paused (else: failure).")
    timeout_seconds: float | None = Field(
        None,
        gt=0,
        description="Give up on the DAG run after this long: it is marked failed (retryable).",
    )
    request_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one API request.")


#: The config model of each built-in executor topic: checked by ``streamcoord validate`` and
#: described in the spec's JSON Schema for an executor on that topic.
EXECUTOR_CONFIGS: Final[dict[str, type[BaseModel]]] = {
    DBT_TRIGGER_TOPIC: DbtExecutorConfig,
    AIRFLOW_TRIGGER_TOPIC: AirflowExecutorConfig,
}
