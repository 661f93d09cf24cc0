"""Roles and what each may do: the permission matrix as data (docs/api.md has the table)."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    """A role a user holds; a user may hold several."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(StrEnum):
    """One thing the API lets a caller do."""

    STATUS_READ = "status.read"  # readings, device and collector status, the board
    ALERTS_READ = "alerts.read"
    ALERTS_ACT = "alerts.act"  # acknowledge, silence
    RECORDS_READ = "records.read"  # compliance records and checks
    RECORDS_WRITE = "records.write"  # record a test, a vendor visit, ...
    ACCESS_READ = "access.read"  # access grants and reviews (personal data)
    ACCESS_DECIDE = "access.decide"  # decide a review's lines
    ACCESS_SIGN_OFF = "access.sign_off"
    EVIDENCE_GENERATE = "evidence.generate"
    EVIDENCE_DOWNLOAD = "evidence.download"
    AUDIT_READ = "audit.read"  # browse and export the audit log
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"  # add, disable, roles, tokens of others


_READ = frozenset({Permission.STATUS_READ, Permission.ALERTS_READ, Permission.RECORDS_READ})

MATRIX: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.OPERATOR: _READ | {Permission.ALERTS_ACT, Permission.RECORDS_WRITE, Permission.EVIDENCE_GENERATE},
    Role.APPROVER: _READ | {Permission.ACCESS_READ, Permission.ACCESS_DECIDE, Permission.ACCESS_SIGN_OFF},
    # The inspector: reads everything, downloads evidence, changes nothing.
    Role.AUDITOR: _READ | {Permission.ACCESS_READ, Permission.AUDIT_READ, Permission.EVIDENCE_DOWNLOAD},
    # User administration only: an admin does not act on alerts, records or reviews (separation of duties).
    Role.ADMIN: _READ | {Permission.USERS_READ, Permission.USERS_MANAGE, Permission.AUDIT_READ},
}

ROLE_NAMES = tuple(r.value for r in Role)


class UnknownRole(ValueError):
    """A role name that is not one of Role."""


def parse_role(name: str) -> Role:
    """The role called `name`; UnknownRole names the valid choices."""
    try:
        return Role(name)
    except ValueError:
        raise UnknownRole(f"unknown role {name!r}; valid: {', '.join(ROLE_NAMES)}") from None


def permissions(roles: Iterable[Role | str]) -> frozenset[Permission]:
    """Everything the holder of `roles` may do (the union; unknown role names grant nothing)."""
    out: set[Permission] = set()
    for r in roles:
        if r in ROLE_NAMES:
            out |= MATRIX[Role(r)]
    return frozenset(out)


def allows(roles: Iterable[Role | str], permission: Permission) -> bool:
    """True when one of `roles` grants `permission`."""
    return permission in permissions(roles)


def roles_with(permission: Permission) -> tuple[Role, ...]:
    """The roles that grant `permission` (for a 403's message)."""
    return tuple(r for r in Role if permission in MATRIX[r])
