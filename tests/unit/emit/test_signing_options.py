"""`streamcoord emit --signing-key/--principal`: mistakes are said before anything is sent."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.errors import ConfigError

NOWHERE = ["--bootstrap-servers", "127.0.0.1:1"]  # never reached: the options fail first


def test_a_principal_without_a_key_is_refused() -> None:
    result = CliRunner().invoke(app, ["emit", "t", "--source", "s", "--principal", "x", *NOWHERE])
    assert isinstance(result.exception, ConfigError)
    assert "--principal names who signs: it needs --signing-key" in str(result.exception)


def test_a_key_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key")
    result = CliRunner().invoke(
        app, ["emit", "t", "--source", "s", "--signing-key", str(key), *NOWHERE]
    )
    assert isinstance(result.exception, ConfigError)
    assert f"cannot read an Ed25519 private key from {key}" in str(result.exception)
