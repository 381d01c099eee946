"""Schemathesis against docmill's own OpenAPI schema: no route answers a 5xx to anything the
schema allows (nor to the junk Schemathesis makes of it), on the session server.

Bounded: at most MAX_EXAMPLES generated requests per operation, derandomized so that a run
is reproducible. (Schemathesis's pytest loader, `from_fixture`, does not work with pytest 9:
the operations are fuzzed one after the other inside one test instead.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import RunningServer

MAX_EXAMPLES = 20


def fuzz_operation(operation: schemathesis.APIOperation) -> int:
    """Send up to MAX_EXAMPLES generated requests to one operation; raise on a 5xx.

    Returns how many requests were sent.
    """
    sent = []

    @given(case=operation.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def no_server_error(case: schemathesis.Case) -> None:
        sent.append(case.call_and_validate(checks=[not_a_server_error], timeout=60).status_code)

    no_server_error()
    return len(sent)


def test_no_route_answers_a_server_error(server: RunningServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        sent[f"{operation.method.upper()} {operation.path}"] = fuzz_operation(operation)
    assert len(sent) >= 40, sent  # every route, at /v1/... and /...
    assert sum(sent.values()) >= 10 * len(sent), sent
