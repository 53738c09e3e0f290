"""Records of the compacted ``streamcoord.specs`` topic: one published version of the spec set.

Key: the version (the catalog's content hash). Value: this model as JSON. A record carries the
spec files' texts, so any member rebuilds the catalog with the normal loader and validator, and
problems still name the file and line. Pure: bytes in, bytes out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamcoord.errors import ConfigError

__all__ = ["SPECS_RECORD_SCHEMA_FILE", "SpecsRecord"]

SPECS_RECORD_SCHEMA_FILE: Final = "specs.record.schema.json"


class SpecsRecord(BaseModel):
    """One version of the spec set, as `streamcoord specs apply` published it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, description="Content hash of the spec set (the key).")
    applied_at: datetime
    applied_by: str = Field(description="user@host of whoever applied it.")
    message: str | None = Field(None, description="Why, in the applier's words.")
    files: dict[str, str] = Field(
        min_length=1,
        description="Spec file text by relative path, in the order they were loaded.",
    )

    def to_bytes(self) -> bytes:
        """The record's value on the topic."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, value: bytes, *, where: str = "the specs topic") -> SpecsRecord:
        """Parse a record's value; raises ``ConfigError`` naming ``where`` if it is not one."""
        try:
            return cls.model_validate_json(value)
        except ValidationError as error:
            raise ConfigError(
                f"{where}: not a specs record: {error.errors(include_url=False)[0]['msg']}",
                hint="only `streamcoord specs apply` should write to the specs topic",
            ) from None
