"""Schemathesis fuzzes every operation of /openapi.json against a real server.

Valid and invalid requests, as the admin and as a robot: no 5xx, every status code and response
body as documented, and invalid requests refused with a 4xx. The examples are bounded to keep the
suite fast; the store must pass its integrity check afterwards.
"""

import pytest
import schemathesis
from fleetlib import ThreadServer
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

from armfarm.data import check_store
from armfarm.fleet.server import ServerConfig

EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.fixture(scope="module")
def fuzzed(backend, tmp_path_factory):
    config = ServerConfig(store=tmp_path_factory.mktemp("fuzz") / "store", index_url=backend, rate_limit=0)
    with ThreadServer(config) as running:
        yield running


def run_operation(operation, mode, headers, path_parameters):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(mode, headers=headers, path_parameters=path_parameters))
    def fuzz(case):
        case.call_and_validate(checks=CHECKS)

    try:
        fuzz()
    except Unsatisfiable:  # nothing violates the schema (e.g. any bytes are a valid binary body)
        assert mode is GenerationMode.NEGATIVE


@pytest.mark.parametrize("who", ["admin", "robot"])
def test_api_conforms_to_its_openapi_description(fuzzed, who):
    robot_id, robot_token = fuzzed.register("fuzzed-robot") if who == "admin" else fuzzed.register()
    token = fuzzed.admin_token if who == "admin" else robot_token
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 16
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        fixed = {"robot_id": robot_id} if "robot_id" in names else None  # reach past the 403 as that robot
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run_operation(operation, mode, {"Authorization": f"Bearer {token}"}, fixed)
    report = check_store(fuzzed.store.path)
    assert report.ok, report.problems
