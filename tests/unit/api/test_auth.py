"""Tokens, roles and where they are configured."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from streamcoord.auth import (
    AuthSettings,
    Principal,
    Refusal,
    Role,
    TokenRegistry,
    hash_token,
    is_loopback,
    new_token,
)
from streamcoord.cli.ingest import ingest_tokens
from streamcoord.cli.serve import auth_registry
from streamcoord.errors import ConfigError


def registry_of(**roles: str) -> tuple[TokenRegistry, dict[str, str]]:
    plain = {name: new_token() for name in roles}
    tokens = TokenRegistry(
        (name, hash_token(plain[name]), Role[role]) for name, role in roles.items()
    )
    return tokens, plain


def test_new_tokens_are_long_random_and_recognisable() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("sct_") and len(t) >= 40 for t in tokens)
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_roles_include_the_ones_below() -> None:
    tokens, plain = registry_of(v="viewer", o="operator", a="admin")
    check = tokens.check
    assert check(f"Bearer {plain['v']}", Role.viewer) == Principal("v", Role.viewer)
    assert isinstance(check(f"Bearer {plain['v']}", Role.operator), Refusal)
    assert check(f"Bearer {plain['o']}", Role.operator) == Principal("o", Role.operator)
    refused = check(f"Bearer {plain['o']}", Role.admin)
    assert isinstance(refused, Refusal)
    assert (refused.status, refused.code) == (403, "forbidden")
    assert check(f"bearer {plain['a']}", Role.admin) == Principal("a", Role.admin)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic dTpw", "Bearer sct_x"])
def test_missing_malformed_or_unknown_tokens_are_401(header: str | None) -> None:
    tokens, _ = registry_of(a="admin")
    refused = tokens.check(header, Role.viewer)
    assert isinstance(refused, Refusal)
    assert (refused.status, refused.code) == (401, "unauthorized")


def test_an_open_registry_lets_everyone_in_as_its_principal() -> None:
    anonymous = Principal("anonymous", Role.admin)
    assert TokenRegistry(open_as=anonymous).check(None, Role.admin) == anonymous


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    others = ["0.0.0.0", "10.0.0.1", "::", "example.org", ""]  # noqa: S104 - refused ones
    assert not any(map(is_loopback, others))


def test_tokens_from_the_settings_file_and_the_environment_which_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = new_token()
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[kafka]\nbootstrap_servers = "127.0.0.1:9092"\n\n[[auth.tokens]]\nname = "ci"\n'
        f'role = "operator"\nsha256 = "{hash_token(token)}"\n'
    )
    monkeypatch.delenv("STREAMCOORD_AUTH_TOKENS", raising=False)
    from_file = AuthSettings.load(config).registry()
    assert from_file.check(f"Bearer {token}", Role.operator) == Principal("ci", Role.operator)
    other = new_token()
    entry = {"name": "env", "role": "viewer", "sha256": hash_token(other)}
    monkeypatch.setenv("STREAMCOORD_AUTH_TOKENS", orjson.dumps([entry]).decode())
    from_env = AuthSettings.load(config).registry()
    assert from_env.check(f"Bearer {other}", Role.viewer) == Principal("env", Role.viewer)
    assert isinstance(from_env.check(f"Bearer {token}", Role.viewer), Refusal)


@pytest.mark.parametrize(
    "value",
    ["not json", '[{"name": "x", "role": "root", "sha256": "' + "0" * 64 + '"}]',
     '[{"name": "x", "role": "viewer", "sha256": "abc"}]'],
)  # fmt: skip
def test_invalid_token_settings_say_what_is_wrong(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMCOORD_AUTH_TOKENS", value)
    with pytest.raises(ConfigError, match="invalid auth settings in STREAMCOORD_AUTH_TOKENS"):
        AuthSettings.load(None)


def test_serve_without_tokens_generates_an_admin_token_and_prints_it_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STREAMCOORD_AUTH_TOKENS", raising=False)
    monkeypatch.delenv("STREAMCOORD_CONFIG", raising=False)
    tokens = auth_registry(None, "127.0.0.1", insecure=False)
    printed = capsys.readouterr().out
    token = printed.strip().rsplit(" ", 1)[-1]
    assert printed.count("sct_") == 1
    assert tokens.check(f"Bearer {token}", Role.admin) == Principal("generated-admin", Role.admin)
    assert isinstance(tokens.check(None, Role.viewer), Refusal)


def test_insecure_is_refused_off_loopback_and_open_on_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigError, match="loopback only"):
        auth_registry(None, "0.0.0.0", insecure=True)  # noqa: S104 - the address refused
    with caplog.at_level(logging.WARNING):
        tokens = auth_registry(None, "127.0.0.1", insecure=True)
    assert tokens.check(None, Role.admin) == Principal("anonymous", Role.admin)
    assert "no authentication" in caplog.text


def test_ingest_without_tokens_is_open_on_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMCOORD_AUTH_TOKENS", raising=False)
    monkeypatch.delenv("STREAMCOORD_CONFIG", raising=False)
    assert ingest_tokens(None, "127.0.0.1") is None
    with pytest.raises(ConfigError, match="loopback only"):
        ingest_tokens(None, "0.0.0.0")  # noqa: S104 - the address refused
    entry = {"name": "n", "role": "operator", "sha256": hash_token(new_token())}
    monkeypatch.setenv("STREAMCOORD_AUTH_TOKENS", orjson.dumps([entry]).decode())
    configured = ingest_tokens(None, "0.0.0.0")  # noqa: S104 - allowed with tokens
    assert configured is not None
    assert not configured.empty


def test_token_create_prints_a_token_and_the_settings_that_accept_it() -> None:
    from typer.testing import CliRunner

    from streamcoord.cli.main import app

    result = CliRunner().invoke(app, ["token", "create", "ci", "--role", "operator"])
    assert result.exit_code == 0, result.output
    token = result.output.split("token: ", 1)[1].split()[0]
    entry = orjson.loads(result.output.strip().splitlines()[-1])
    assert entry == [{"name": "ci", "role": "operator", "sha256": hash_token(token)}]
    assert f'sha256 = "{hash_token(token)}"' in result.output
