"""Accepted tokens, from the ``[auth]`` table of the settings file or the environment.

```toml
[[auth.tokens]]
name = "ci"
role = "operator"
sha256 = "<hex SHA-256 of the token>"   # `streamcoord token create` prints it
```

or ``STREAMCOORD_AUTH_TOKENS='[{"name": "ci", "role": "operator", "sha256": "..."}]'``, which
wins over the file. Only hashes are stored: a leaked settings file gives no token away.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from streamcoord.auth._tokens import Role, TokenRegistry
from streamcoord.errors import ConfigError

__all__ = ["AuthSettings", "TokenSpec"]

TOKENS_ENV: Final = "STREAMCOORD_AUTH_TOKENS"
_CONFIG_ENV: Final = "STREAMCOORD_CONFIG"
_TABLE: Final = "auth"


class TokenSpec(BaseModel):
    """One accepted token: who it is, what it may do, and its hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "operator", "admin"]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]


class AuthSettings(BaseModel):
    """The tokens a server accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[TokenSpec] = Field(default_factory=list)

    def registry(self) -> TokenRegistry:
        return TokenRegistry((t.name, t.sha256, Role.named(t.role)) for t in self.tokens)

    @classmethod
    def load(cls, config: Path | None = None) -> AuthSettings:
        """From ``STREAMCOORD_AUTH_TOKENS``, else the ``[auth]`` table of ``config`` (default
        ``STREAMCOORD_CONFIG``); raises ``ConfigError`` when either is invalid."""
        raw: dict[str, Any] = {}
        path = config or (Path(os.environ[_CONFIG_ENV]) if os.environ.get(_CONFIG_ENV) else None)
        if path is not None:
            table = _read(path).get(_TABLE, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: '{_TABLE}' must be a table of settings")
            raw = table
        where = str(path) if path else "settings"
        if env := os.environ.get(TOKENS_ENV):
            raw = {**raw, "tokens": env}
            where = TOKENS_ENV
        try:
            if isinstance(raw.get("tokens"), str):
                return cls.model_validate({**raw, "tokens": _json_list(raw["tokens"])})
            return cls.model_validate(raw)
        except (ValidationError, ValueError) as error:
            raise ConfigError(
                f"invalid auth settings in {where}: {_summary(error)}",
                hint='each token is {"name": ..., "role": "viewer|operator|admin", "sha256": '
                "<64 hex>}; `streamcoord token create NAME --role ROLE` prints one",
            ) from None


def _json_list(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ValueError(f"not JSON: {error}") from None


def _summary(error: ValidationError | ValueError) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}"
            for d in error.errors(include_url=False)
        )
    return str(error)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the config file {path}: {error.strerror}") from None
    try:
        loaded = tomllib.loads(text) if path.suffix == ".toml" else YAML(typ="safe").load(text)
    except (tomllib.TOMLDecodeError, YAMLError) as error:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {error}") from None
    return loaded if isinstance(loaded, dict) else {}
