"""Request and response bodies of the auth and user endpoints (pydantic; they make the OpenAPI), and the
date-time type every route's input shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from api.store import UserView

# SQLite's INTEGER: a larger id or sequence number cannot exist (and must not reach the driver).
MAX_ID = 2**63 - 1


def in_utc_range(value: datetime) -> datetime:
    """`value` if it has a UTC time (the database stores UTC): 0001-01-01T00:00+08:00 has none."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("超出範圍 out of range: before 0001-01-01 or after 9999-12-31 in UTC") from None
    return value


UtcTime = Annotated[AwareDatetime, AfterValidator(in_utc_range)]
"""A date-time of a request: with an offset, and within the range a UTC datetime can hold (else a 422)."""


class LoginRequest(BaseModel):
    """A JSON login."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    username: str = Field(min_length=1, max_length=64, description="User name.")
    password: str = Field(min_length=1, max_length=1024, description="Password.")


class UserOut(BaseModel):
    """A user as the API shows it (no hash, ever)."""

    username: str
    display_name: str
    roles: list[str]
    disabled: bool
    locked_until: datetime | None
    password_changed_at: datetime
    created_at: datetime

    @classmethod
    def of(cls, u: UserView) -> UserOut:
        """From the store's view."""
        return cls(
            username=u.username,
            display_name=u.display_name,
            roles=list(u.roles),
            disabled=u.disabled,
            locked_until=u.locked_until,
            password_changed_at=u.password_changed_at,
            created_at=u.created_at,
        )


class LoginOut(BaseModel):
    """A successful login: the session cookie is set; send csrf_token with every unsafe request."""

    user: UserOut
    csrf_token: str = Field(description="Send as the X-CSRF-Token header on POST/PUT/PATCH/DELETE.")
    expires_at: datetime


class MeOut(BaseModel):
    """The caller: user, how it authenticated, what it may do."""

    user: UserOut
    via: str = Field(description="session or token")
    permissions: list[str]
    csrf_token: str | None = Field(None, description="The session's CSRF token (sessions only).")


class HealthOut(BaseModel):
    """Liveness: the process answers and the records database does."""

    status: str
    database: str


class PasswordChange(BaseModel):
    """A user's own password change."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)
