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
# `${NAME}` in a secret file's path: systemd hands a unit its credentials (LoadCredential=) in a directory
# named only at run time, exported as $CREDENTIALS_DIRECTORY (systemd.exec(5) "Credentials"), and it
# differs per unit (/run/credentials/<unit>/). Only the braced form is expanded; any other `$` is refused
# when the file is loaded, so a typo never becomes a path that silently does not exist.
_PATH_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
        if self.file is not None and "$" in _PATH_VAR.sub("", str(self.file)):
            raise issues_error(
                [
                    {
                        "loc": ("file",),
                        "msg": "a variable in a secret file path is written ${NAME}, "
                        "e.g. ${CREDENTIALS_DIRECTORY}/mqtt_password",
                        "input": str(self.file),
                    }
                ]
            )
        return self

    def file_path(self, base_dir: Path | None = None) -> Path:
        """The secret file with `${NAME}` expanded from the environment; relative paths under `base_dir`."""
        assert self.file is not None

        def expand(m: re.Match[str]) -> str:
            value = os.environ.get(m.group(1))
            if not value:
                hint = (
                    " (systemd sets it in a unit with LoadCredential=, systemd.exec(5); "
                    "on an installed box run the command as `roomguard-admin …`, which lays the "
                    "credentials out the same way, or set the variable yourself)"
                    if m.group(1) == "CREDENTIALS_DIRECTORY"
                    else ""
                )
                raise SecretError(
                    f"secret file {self.file}: environment variable {m.group(1)} is not set{hint}"
                )
            return value

        path = Path(_PATH_VAR.sub(expand, str(self.file)))
        return path if base_dir is None or path.is_absolute() else base_dir / path

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
        path = self.file_path(base_dir)
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"secret file {path} cannot be read: {exc.strerror or exc}") from None

    def resolve_secret(self, base_dir: Path | None = None) -> SecretStr:
        """Like `resolve`, wrapped so that printing or logging it shows `**********`."""
        return SecretStr(self.resolve(base_dir))
