"""Pipeline specs: models, YAML loading with located problems, semantic checks, expressions.

Pure apart from :func:`load_specs`, :func:`read_topic_names`, :func:`validate_paths` and
:func:`write_spec_schema`, which read or write files at the package's edge. Expressions are
CEL: sandboxed, deterministic, no clock and no I/O (see :mod:`streamcoord.pipelines.expressions`).
"""

from __future__ import annotations

from streamcoord.pipelines.checks import check_specs
from streamcoord.pipelines.diagram import DiagramFormat, render_diagram
from streamcoord.pipelines.expressions import (
    CONDITION_VARIABLES,
    EVENT_VARIABLES,
    NEED_VARIABLES,
    RUN_KEY_VARIABLES,
    CompiledExpression,
    CompiledTemplate,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
    compile_template,
    to_json_value,
)
from streamcoord.pipelines.graph import StageRef, dependency_edges, find_cycles, need_target
from streamcoord.pipelines.loader import (
    LoadedSpecs,
    SpecDocument,
    load_specs,
    parse_specs,
    read_topic_names,
)
from streamcoord.pipelines.models import (
    DEFAULT_TRIGGER_TOPIC,
    Backoff,
    Concurrency,
    DataArrivalTrigger,
    EventTrigger,
    Executor,
    ExecutorKind,
    ManualTrigger,
    Need,
    OverLimitPolicy,
    Pipeline,
    PipelineOutcomeTrigger,
    Pool,
    RetryPolicy,
    ScheduleTrigger,
    SpecFile,
    Stage,
    StageDefaults,
    Trigger,
    TriggerRule,
)
from streamcoord.pipelines.problem import Problem, Severity, format_path
from streamcoord.pipelines.schema import SPEC_SCHEMA_FILE, render_spec_schema, write_spec_schema
from streamcoord.pipelines.secrets import SecretRef, SecretReference, SecretRefError, secret_ref
from streamcoord.pipelines.validation import (
    DEFAULT_TOPICS_FILE,
    ValidationReport,
    validate_paths,
    validate_texts,
)

__all__ = [
    "CONDITION_VARIABLES",
    "DEFAULT_TOPICS_FILE",
    "DEFAULT_TRIGGER_TOPIC",
    "EVENT_VARIABLES",
    "NEED_VARIABLES",
    "RUN_KEY_VARIABLES",
    "SPEC_SCHEMA_FILE",
    "Backoff",
    "CompiledExpression",
    "CompiledTemplate",
    "Concurrency",
    "DataArrivalTrigger",
    "DiagramFormat",
    "EventTrigger",
    "Executor",
    "ExecutorKind",
    "ExpressionError",
    "ExpressionEvaluationError",
    "LoadedSpecs",
    "ManualTrigger",
    "Need",
    "OverLimitPolicy",
    "Pipeline",
    "PipelineOutcomeTrigger",
    "Pool",
    "Problem",
    "RetryPolicy",
    "ScheduleTrigger",
    "SecretRef",
    "SecretRefError",
    "SecretReference",
    "Severity",
    "SpecDocument",
    "SpecFile",
    "Stage",
    "StageDefaults",
    "StageRef",
    "Trigger",
    "TriggerRule",
    "ValidationReport",
    "check_specs",
    "compile_expression",
    "compile_template",
    "dependency_edges",
    "find_cycles",
    "format_path",
    "load_specs",
    "need_target",
    "parse_specs",
    "read_topic_names",
    "render_diagram",
    "render_spec_schema",
    "secret_ref",
    "to_json_value",
    "validate_paths",
    "validate_texts",
    "write_spec_schema",
]
