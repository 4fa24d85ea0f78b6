"""Schemathesis over the whole served spec, anonymous and with a token of each role: no 5xx, and every answer
(status, content type, body) is what the spec says. Bounded and seeded: a fixed number of examples per operation,
derandomized, so a run is repeatable and its time bounded.

Jobs go to the real test Redis (no worker consumes them: a rescore of every city stays queued and costs nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import REDIS_URL, bearer, make_test_app

SUZHOU = 1886760
EXAMPLES = int(os.environ.get("TWINNING_FUZZ_EXAMPLES", "6"))  # per operation, mode and role
NO_INPUT = {"GET /api/v1/sectors", "GET /api/v1/me", "POST /api/v1/jobs/train"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def fuzz_app(db_engine: Any, database_url: str, tmp_path: Any) -> Iterator[Any]:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield make_test_app(database_url, tmp_path, JOBS_MODE="celery", REDIS_URL=REDIS_URL)
    client.flushdb()
    client.close()


def headers_for(app: Any, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    extra: dict[str, Any] = {"cities": (SUZHOU,)} if role == "official" else {}
    return bearer(app, role, **extra)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["anonymous", "official", "coordinator", "admin"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_spec_tells_the_truth(fuzz_app: Any, role: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    headers = headers_for(fuzz_app, role)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    no_input: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:  # no input to break: nothing negative to send
            assert mode is GenerationMode.NEGATIVE, operation.label
            no_input.append(operation.label)
    assert set(no_input) <= NO_INPUT, no_input
