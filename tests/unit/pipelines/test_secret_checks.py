"""validate and secrets: malformed references are errors, literal secrets are warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.pipelines import parse_specs, validate_paths
from streamcoord.pipelines.secret_checks import invalid_secret_refs, literal_secret_warnings

SPEC = """\
pipelines:
  - name: orders
    defaults:
      executor:
        config:
          headers:
            X-Trace: on
            Authorization: Bearer abcdef0123456789
    stages:
      - name: extract
        executor:
          config:
            command: ./extract.sh {run_key} --out /data/orders.extract.2024-01-01
            env:
              DB_PASSWORD: hunter2
              API: {secret: {env: API_TOKEN}}
              CERT: {secret: {file: /var/run/secrets/cert}}
              KEY_ID: AKIAIOSFODNN7EXAMPLE
              PEM: "-----BEGIN RSA PRIVATE KEY-----\\nMIIE\\n"
              GH: ghp_16C7e42F292c6912E7710c838347Ae178B4a
              DSN: postgres://app:pw@db/orders
              REGION: eu-west-1
              RUN: 550e8400-e29b-41d4-a716-446655440000
"""


def _warnings(text: str) -> list[tuple[int, int, str, str]]:
    loaded = parse_specs(text, "s.yaml")
    return [(w.line, w.col, w.path.rsplit(".", 1)[-1], w.message.split(":")[0])
            for w in literal_secret_warnings(loaded)]  # fmt: skip


def test_literal_secrets_are_warned_about_where_they_are_written() -> None:
    assert _warnings(SPEC) == [
        (8, 28, "Authorization", "'Authorization' names a secret but holds a literal string"),
        (15, 28, "DB_PASSWORD", "'DB_PASSWORD' names a secret but holds a literal string"),
        (18, 23, "KEY_ID", "the value holds what looks like an AWS access key id"),
        (19, 20, "PEM", "the value holds a private key"),
        (20, 19, "GH", "the value looks like a token (a long random string)"),
        (21, 20, "DSN", "the URL holds a password"),
    ]


def test_a_warning_says_how_to_write_the_reference() -> None:
    warning = next(iter(literal_secret_warnings(parse_specs(SPEC, "s.yaml"))))
    assert warning.severity == "warning"
    assert "{secret: {env: NAME}}" in warning.hint
    assert str(warning).startswith("s.yaml:8:28: warning: pipelines[0].defaults.executor")


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("{}", "exactly one of 'env' and 'file'"),
        ("{env: A, file: /b}", "exactly one of 'env' and 'file'"),
        ("{env: 9A}", "env: String should match pattern"),
        ("{vault: x}", "vault: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_reference_is_an_error(ref: str, reason: str) -> None:
    config = f"{{env: {{T: {{secret: {ref}}}}}}}"
    text = f"pipelines: [{{name: p, stages: [{{name: s, executor: {{config: {config}}}}}]}}]\n"
    loaded = parse_specs(text, "s.yaml")
    [problem] = invalid_secret_refs(loaded)
    assert problem.severity == "error"
    assert problem.path == "pipelines[0].stages[0].executor.config.env.T"
    assert reason in problem.message


def test_warnings_alone_keep_validate_green(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(SPEC)
    report = validate_paths([tmp_path], topics_file=None)
    assert report.ok
    assert len(report.warnings) == 6
    result = CliRunner().invoke(app, ["validate", str(tmp_path), "--topics", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert "p.yaml:15:28: warning: pipelines[0].stages[0].executor.config.env.DB_PASSWORD" in (
        result.output
    )
    assert "0 problems, 6 warnings" in result.output


def test_a_malformed_reference_fails_validate(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(SPEC.replace("{env: API_TOKEN}", "{env: API_TOKEN, file: x}"))
    result = CliRunner().invoke(app, ["validate", str(tmp_path), "--topics", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "invalid secret reference" in result.output
