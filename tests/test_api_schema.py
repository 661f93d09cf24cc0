"""schemathesis against the app's served OpenAPI (`/api/v1/openapi.json`, in process through ASGI): every
operation of every router in api.app.ROUTERS, called with a bearer token of a user holding every role
but admin, and once as admin, over a migrated records database with users, tokens and audit entries.

Checks: no 5xx (not_a_server_error), every answer matches its declared schema
(response_schema_conformance) and its status is one the operation declares (status_code_conformance:
a route that can answer 400/404/409/… lists it in `responses=`). Bounded: few examples per operation,
derandomized (the same cases every run), so it stays well under two minutes on a slow box.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import OPENAPI_URL, ROUTERS, create_app
from records.db import make_engine
from records.migrate import upgrade
from siteconfig.api_config import ApiConfig, LoginThrottle
from tests.api_support import (
    ADMIN_CLI,
    FAST_HASHER,
    PASSWORD,
    T0,
    Clock,
    store_with_users,
)

# Generous throttles: schemathesis sends many failed logins from one address on purpose.
SETTINGS = ApiConfig(login=LoginThrottle(max_failures=100, address_failures=10_000))
EVERY_ROLE_BUT_ADMIN = ["viewer", "operator", "approver", "auditor"]
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
TOKENS: dict[str, str] = {}


# The app is made at import (schemathesis reads its OpenAPI while collecting; from_fixture does not work
# with this pytest); its database is filled by the module's fixture before any call.
FOLDER = Path(tempfile.mkdtemp(prefix="roomguard-schemathesis-"))
atexit.register(shutil.rmtree, FOLDER, True)  # also when no test of this module runs (-k)
ENGINE = make_engine(FOLDER / "records.db")
APP = create_app(SETTINGS, records_url=ENGINE, state_dir=FOLDER, clock=Clock(T0), hasher=FAST_HASHER)
schema = schemathesis.openapi.from_asgi(OPENAPI_URL, APP)


@pytest.fixture(scope="module", autouse=True)
def records() -> Iterator[None]:
    """The migrated records database with users of every role, two tokens and their audit entries."""
    upgrade(ENGINE)
    store = store_with_users(ENGINE)
    store.add_user("every-role", PASSWORD, EVERY_ROLE_BUT_ADMIN, ADMIN_CLI, T0, display_name="Every Role")
    TOKENS["every-role"] = store.create_token("schemathesis-roles", "every-role", ADMIN_CLI, T0)
    TOKENS["admin"] = store.create_token("schemathesis-admin", "alice", ADMIN_CLI, T0)
    yield
    ENGINE.dispose()
    shutil.rmtree(FOLDER, ignore_errors=True)


# Few examples per operation, the same ones every run (derandomized), no example database on disk.
BOUNDED = settings(
    max_examples=8,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.timeout(900)  # a generous bound for a slow, shared box; it takes well under 2 min
@schema.parametrize()
@BOUNDED
def test_the_openapi_holds_for_a_user_of_every_role_but_admin(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS['every-role']}"}, checks=CHECKS)


@pytest.mark.timeout(900)
@schema.parametrize()
@BOUNDED
def test_the_openapi_holds_for_the_admin(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKENS['admin']}"}, checks=CHECKS)


def test_the_schema_covers_every_route_of_every_router() -> None:
    """What schemathesis walks is the whole API: every route of api.app.ROUTERS that is in the schema."""
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    served = {(op.method.upper(), op.path) for op in operations}
    routed = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routed <= served, routed - served
    assert ("GET", "/healthz") in served
