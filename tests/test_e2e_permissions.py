"""Who may do what, end to end: cut one permission and the run fails as it would on AWS.

Each case deploys the packaged template with one grant taken out (or one GRANT revoked in
the warehouse), runs the 13-row sample through the real state machine, and checks the
error the failing step reports: the local stack authorizes every call of every role and
runs every statement as the database user Redshift would sign in.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from e2e_support import REPO_ROOT, execution_output, history_states, query, run_files

from flightpipe_local.run import PipelineRunner
from flightpipe_local.stack import EmulatedStack
from flightpipe_local.template import package


def without_action(template: dict[str, Any], logical_id: str, action: str) -> dict[str, Any]:
    """The template with ``action`` removed from every Allow statement of one resource's
    policies (a statement left with no action is removed)."""
    cut = copy.deepcopy(template)
    removed = _remove_action(cut["Resources"][logical_id]["Properties"], action)
    assert removed, f"{logical_id} grants no {action}"
    return cut


def _remove_action(node: Any, action: str) -> int:
    removed = 0
    if isinstance(node, dict):
        if node.get("Effect") == "Allow" and "Action" in node:
            actions = node["Action"] if isinstance(node["Action"], list) else [node["Action"]]
            kept = [a for a in actions if a != action]
            removed += len(actions) - len(kept)
            node["Action"] = kept
        for value in node.values():
            removed += _remove_action(value, action)
        _drop_empty_statements(node)
    elif isinstance(node, list):
        for value in node:
            removed += _remove_action(value, action)
    return removed


def _drop_empty_statements(node: dict[str, Any]) -> None:
    statements = node.get("Statement")
    if isinstance(statements, list):
        node["Statement"] = [
            s for s in statements if not (isinstance(s, dict) and s.get("Action") == [])
        ]


@pytest.fixture(scope="module")
def packaged() -> Any:
    return package(REPO_ROOT)


def _stack_without(packaged: Any, logical_id: str, action: str) -> EmulatedStack:
    cut = dataclasses.replace(
        packaged, template=without_action(packaged.template, logical_id, action)
    )
    return EmulatedStack(REPO_ROOT, packaged=cut)


def _run_sample(stack: EmulatedStack, shared_data: Path) -> Any:
    PipelineRunner(stack).upload_airports(shared_data / "airports.csv")
    (outcome,) = run_files(stack, shared_data / "sample_flights.csv")
    return outcome


def _failed_state(stack: EmulatedStack, execution_arn: str) -> str:
    """The state whose task failed first (its TaskFailed, LambdaFunctionFailed... event)."""
    events = stack.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    entered = ""
    for event in events:
        if event["type"].endswith("StateEntered"):
            entered = event["stateEnteredEventDetails"]["name"]
        if event["type"] in ("TaskFailed", "LambdaFunctionFailed"):
            return entered
    raise AssertionError("no task failed")


def test_a_run_signs_in_as_the_lambda_and_job_roles_database_users(shared_data, packaged):
    with EmulatedStack(REPO_ROOT, packaged=packaged) as stack:
        outcome = _run_sample(stack, shared_data)
        assert (outcome.execution_status, outcome.load_status) == ("SUCCEEDED", "LOADED")
        users = {row["usename"] for row in query(stack, "SELECT usename FROM pg_user")}
        roles = stack.deployment.resources  # type: ignore[union-attr]
        assert f"IAMR:{roles['PrepareWarehouseRole'].ref}" in users
        assert f"IAMR:{roles['EtlJobRole'].ref}" in users
        assert stack.authorizer.log.refused() == []


def test_without_tag_get_resources_prepare_warehouse_fails_on_the_schema(shared_data, packaged):
    for role in ("PrepareWarehouseRole", "WarehouseAccessPolicy"):
        if "tag:GetResources" in str(packaged.template["Resources"][role]):
            break
    with _stack_without(packaged, role, "tag:GetResources") as stack:
        outcome = _run_sample(stack, shared_data)
        assert outcome.execution_status == "FAILED"
        assert _failed_state(stack, outcome.execution_arn) == "PrepareWarehouse"
        assert "permission denied for schema airlines" in (outcome.error or "")


def test_without_glue_start_crawler_the_file_loads_with_the_refusal_as_its_warning(
    shared_data, packaged
):
    with _stack_without(packaged, "StartCrawlerRole", "glue:StartCrawler") as stack:
        outcome = _run_sample(stack, shared_data)
        # A crawl never costs a load: the refusal is the execution's warning, not its end.
        assert (outcome.execution_status, outcome.load_status) == ("SUCCEEDED", "LOADED")
        crawl = execution_output(stack, outcome.execution_arn)["crawl"]
        assert crawl["status"] == "UNAVAILABLE"
        assert crawl["warning"].startswith(
            f"crawler {stack.crawler_name} unavailable - AccessDeniedException on StartCrawler: "
        )
        assert "glue:StartCrawler" in crawl["warning"]
        (notice,) = stack.notices.notices()
        assert notice.body()["warning"] == crawl["warning"]


def test_without_the_job_roles_put_object_the_job_fails_staging_its_rows(shared_data, packaged):
    with _stack_without(packaged, "EtlJobRole", "s3:PutObject") as stack:
        outcome = _run_sample(stack, shared_data)
        assert outcome.execution_status == "FAILED"
        assert "RunEtlJob" in history_states(stack, outcome.execution_arn)
        assert "s3:PutObject" in (outcome.error or "")
        assert "/staging/" in (outcome.error or "")


def test_without_a_grant_the_load_fails_with_redshifts_permission_error(shared_data, packaged):
    with EmulatedStack(REPO_ROOT, packaged=packaged) as stack:
        first = _run_sample(stack, shared_data)
        assert first.load_status == "LOADED"
        assert stack.standin is not None
        stack.standin.query("REVOKE INSERT ON TABLE airlines.daily_flights_fact FROM flightpipe")
        (outcome,) = run_files(stack, shared_data / "sample_flights.csv")
        assert outcome.execution_status == "FAILED"
        assert "permission denied for relation daily_flights_fact" in (outcome.error or "")
