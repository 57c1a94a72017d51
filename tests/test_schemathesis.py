"""Property-based fuzzing of the REST API from its own OpenAPI spec (schemathesis).

Every operation gets generated requests, valid and hostile (huge integers, odd
unicode, NUL characters, wrong types, malformed rison): whatever the input, the
portal answers a clear 4xx, never a server error. Run as 人事行政经理 (most rights)
and as a 部门主管 and a 客服 (most refusals).
"""

from __future__ import annotations

import pytest
import schemathesis
from conftest import TEST_PASSWORD, build_app, reset_database
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

# SQLite only: the subject is the API's input handling, the same code on either backend
# (the PostgreSQL pass of the integration tests covers the database side).
pytestmark = pytest.mark.slow

_app = build_app("sqlite")
reset_database(_app)
_client = _app.test_client()


_tokens: dict[str, dict[str, str]] = {}


def _headers(username: str) -> dict[str, str]:
    if username in _tokens:
        return _tokens[username]
    r = _client.post("/api/v1/security/login", json={"username": username, "password": TEST_PASSWORD, "provider": "db"})
    _tokens[username] = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
    return _tokens[username]


@pytest.fixture(autouse=True)
def _clean_database():
    """Each case starts from the seeded state, not from whatever the worker's previous test left
    (under pytest-xdist that may be any test: a locked-out login, a deactivated department)."""
    reset_database(_app)


_document = _client.get("/api/v1/_openapi", headers=_headers("renshi")).get_json()
schema = schemathesis.openapi.from_dict(_document)
# The boundary and hostile values of the coverage phase (30–45 per operation, built when the tests are
# collected, by every xdist worker) go to the role that reaches every operation's input handling; for
# the roles whose subject is the refusal path, generated requests only (twice as many as before).
refused_roles_schema = schemathesis.openapi.from_dict(
    _document, config=SchemathesisConfig.from_str("[phases.coverage]\nenabled = false\n")
)


def _no_server_error(case: schemathesis.Case, username: str) -> None:
    response = case.call(app=_app, headers=_headers(username))
    assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text[:300])


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_hr_manager_never_gets_a_server_error(case):
    _no_server_error(case, "renshi")


@refused_roles_schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_department_head_never_gets_a_server_error(case):
    _no_server_error(case, "zhuguan_a")


@refused_roles_schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_customer_service_never_gets_a_server_error(case):
    _no_server_error(case, "kefu")
