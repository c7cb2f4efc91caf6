"""Schemathesis against the REST API's own OpenAPI schema (`/api/v1/openapi.json`): requests
generated from the schema, valid and not, with and without an admin key; never a 5xx.

The ASGI app is called in process (no network). Complements the schema-blind fuzzing of
test_fuzz_routes.py, which covers every route.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from bot.api_keys import Scope, create_key
from bot.app import App
from tests.fakes.hostile_web import all_routes
from tests.fakes.slack_api import FakeSlackAPI

STATUSES: dict[str, Counter[int]] = {}  # per operation


@pytest.fixture
def admin_key(app: App) -> str:
    return create_key(app.db, scope=Scope.ADMIN, name="schemathesis").key


@pytest.fixture
def api_schema(app: App) -> Iterator[schemathesis.schemas.BaseSchema]:
    with FakeSlackAPI() as fake:
        web = all_routes(app, fake).web
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", web)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    """Print the status-code counts of the generated calls."""
    yield
    print("\nschemathesis /api/v1 (calls, status counts):")
    for label, counts in sorted(STATUSES.items()):
        print(f"  {label}: {sum(counts.values())} calls, {dict(sorted(counts.items()))}")


def test_the_api_never_answers_5xx(
    api_schema: schemathesis.schemas.BaseSchema, admin_key: str
) -> None:
    for result in api_schema.get_all_operations():
        fuzz_operation(result.ok(), admin_key)  # type: ignore[union-attr]  # our schema is valid


def fuzz_operation(operation: Any, admin_key: str) -> None:
    """Up to 60 generated cases of one operation, each sent without and with the admin key."""
    label = f"{operation.method.upper()} {operation.path}"

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def fuzz(case: schemathesis.Case[Any]) -> None:
        for headers in ({}, {"Authorization": f"Bearer {admin_key}"}):
            response = case.call(headers=headers)
            STATUSES.setdefault(label, Counter())[response.status_code] += 1
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"

    fuzz()
