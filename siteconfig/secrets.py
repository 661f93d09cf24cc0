"""Secret references: config files name where a secret lives (env var or file), never the secret."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from devices.yamlload import issues_error

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretError(RuntimeError):
    """A secret reference could not be resolved (variable unset, file missing or unreadable)."""


class SecretRef(BaseModel):
    """Where a secret lives: `{env: VAR}` or `{file: PATH}`; the value never sits in the config.

    The model holds only the reference, so its repr and logs are safe; `resolve()` reads the value
    when a transport needs it, and `resolve_secret()` keeps it masked until the last moment.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    env: str | None = Field(None, title="Environment variable", description="Variable holding the secret.")
    file: Path | None = Field(
        None, title="Secret file", description="File holding the secret (systemd credential, Docker secret)."
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_inline(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bool):
            # redact: the rejected value is the secret itself and must not reach the error output.
            raise PydanticCustomError(
                "inline_secret",
                "{msg}",
                {
                    "msg": "secrets must not be written inline; use {env: VAR} or {file: PATH}",
                    "redact": True,
                    "expected": ["env", "file"],
                },
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if self.env is not None and self.file is not None:
            raise issues_error([{"loc": ("file",), "msg": "give either env or file, not both"}])
        if self.env is None and self.file is None:
            raise issues_error([{"msg": "secret reference needs env or file", "expected": ["env", "file"]}])
        if self.env is not None and not _ENV_NAME.match(self.env):
            raise issues_error(
                [{"loc": ("env",), "msg": "not a valid environment variable name", "input": self.env}]
            )
        return self

    def describe(self) -> str:
        """Where the secret comes from, e.g. `env:ROOMGUARD_SNMP_COMMUNITY` (never the value)."""
        return f"env:{self.env}" if self.env is not None else f"file:{self.file}"

    def resolve(self, base_dir: Path | None = None) -> str:
        """Read the secret now; relative files are taken from `base_dir` (default: working dir)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretError(f"secret environment variable {self.env} is not set")
            return value
        assert self.file is not None
        path = self.file if base_dir is None or self.file.is_absolute() else base_dir / self.file
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"secret file {path} cannot be read: {exc.strerror or exc}") from None

    def resolve_secret(self, base_dir: Path | None = None) -> SecretStr:
        """Like `resolve`, wrapped so that printing or logging it shows `**********`."""
        return SecretStr(self.resolve(base_dir))
