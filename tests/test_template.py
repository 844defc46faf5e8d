"""The packaged CloudFormation template: what `sls deploy` would create.

`sls package` runs offline without AWS credentials (scripts/package.sh); these tests read the
template it writes, so they pin the deployed stack itself rather than serverless.yml's syntax.
cfn-lint and checkov run from their own virtualenv (.venv-lint, `make package` creates it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import rule_keys
import yaml

from flightpipe import bucket_layout
from flightpipe.etl.job_args import DEFAULT_REJECT_THRESHOLD
from flightpipe.execution_input import ExecutionInput
from flightpipe_local.template import is_fresh, package

pytestmark = pytest.mark.template

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVERLESS_DIR = REPO_ROOT / ".serverless"
TEMPLATE = SERVERLESS_DIR / "cloudformation-template-update-stack.json"
PACKAGE_ZIP = SERVERLESS_DIR / "flightpipe.zip"
LINT_VENV = REPO_ROOT / ".venv-lint"
# The two ETL jobs: the Python shell job and, for files of at least sparkThresholdBytes, Spark.
JOBS = ("EtlJob", "SparkEtlJob")
# Job arguments only the Python shell job has: its library set and the SDK it upgrades.
SHELL_ONLY_ARGUMENTS = {"library-set", "--additional-python-modules"}


def _serverless_yml() -> dict[str, Any]:
    """serverless.yml as YAML, its CloudFormation tags (!Ref, !Sub, ...) read as plain values."""

    class Loader(yaml.SafeLoader):
        pass

    def untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_scalar(node)

    Loader.add_multi_constructor("!", untagged)
    return yaml.load((REPO_ROOT / "serverless.yml").read_text(encoding="utf-8"), Loader=Loader)


# The stage parameters' defaults (serverless.yml params.default).
DEFAULT_PARAMS = _serverless_yml()["params"]["default"]
FUNCTIONS = {
    "PrepareWarehouseLambdaFunction": "handlers/prepare_warehouse.handler",
    "StartCrawlerLambdaFunction": "handlers/start_crawler.handler",
    "PollCrawlerLambdaFunction": "handlers/poll_crawler.handler",
    "ComposeNoticeLambdaFunction": "handlers/compose_notice.handler",
}
LAMBDA_TRANSIENT_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# Every IAM statement allowed on Resource "*": the actions AWS offers no resource type for.
# serverless.yml carries a `# Resource "*":` comment with the reason beside each of them.
WILDCARD_RESOURCE_ALLOWED = {
    frozenset(
        {
            "redshift-data:DescribeStatement",
            "redshift-data:GetStatementResult",
            "redshift-data:CancelStatement",
        }
    ): "Data API statement actions have no resource type",
    frozenset(
        {
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        }
    ): "vended-log delivery for Step Functions logging has no resource type",
    frozenset(
        {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
        }
    ): "X-Ray tracing actions have no resource-level permissions",
    frozenset(
        {
            "tag:GetResources",
            "tag:GetTagKeys",
        }
    ): "Resource Groups Tagging API read actions have no resource type",
    frozenset({"cloudwatch:PutMetricData"}): "PutMetricData has no resource type (namespace"
    " condition)",
}


def _run_credential_free(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a packaging or lint command in the repository with no AWS credentials."""
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=_credential_free_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _credential_free_env() -> dict[str, str]:
    """The environment for packaging and linting: no AWS credentials of any kind."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/credentials"
    env["AWS_CONFIG_FILE"] = "/nonexistent/config"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def _template_is_fresh() -> bool:
    return PACKAGE_ZIP.exists() and is_fresh(TEMPLATE, REPO_ROOT)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The packaged template; `sls package` runs first unless it is newer than its sources."""
    if not _template_is_fresh():
        result = _run_credential_free(["bash", "scripts/package.sh", "package"])
        assert result.returncode == 0, f"sls package failed:\n{result.stdout}\n{result.stderr}"
    return json.loads(TEMPLATE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def definition(resources: dict[str, Any]) -> dict[str, Any]:
    """The state machine's ASL as deployed, with its Fn::Sub variables put back in place.

    serverless-step-functions renders the definition as ``Fn::Sub [text, {var: intrinsic}]``
    where each ``Ref``/``Fn::GetAtt`` of the ASL file became a ``${var}`` string.
    """
    machine = resources["PipelineStateMachine"]
    assert machine["Type"] == "AWS::StepFunctions::StateMachine"
    rendered = machine["Properties"]["DefinitionString"]
    if isinstance(rendered, str):
        return json.loads(rendered)
    substitution = rendered["Fn::Sub"]
    text, variables = substitution if isinstance(substitution, list) else (substitution, {})
    return _put_back(json.loads(text), variables)


def _put_back(node: Any, variables: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {key: _put_back(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_put_back(value, variables) for value in node]
    if isinstance(node, str) and node.startswith("${") and node[2:-1] in variables:
        return variables[node[2:-1]]
    return node


@pytest.fixture(scope="session")
def states(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: body for name, body in resources.items() if body["Type"] == kind}


def _branches(node: Any) -> Iterator[Any]:
    """Every concrete value a possibly Fn::If-wrapped node can take."""
    if isinstance(node, dict) and "Fn::If" in node:
        for branch in node["Fn::If"][1:]:
            yield from _branches(branch)
    elif isinstance(node, dict) and node.get("Ref") == "AWS::NoValue":
        return
    else:
        yield node


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_statements(resources: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(resource name, statement) for every identity policy statement in the stack."""
    for name, body in resources.items():
        props = body.get("Properties", {})
        documents = []
        if body["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])]
        elif body["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents = [props["PolicyDocument"]]
        for document in documents:
            for entry in _as_list(document["Statement"]):
                for statement in _branches(entry):
                    yield name, statement


# ------------------------------------------------------------------ a tiny Choice evaluator


def _lookup(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) of a simple `$.a.b` JSONPath."""
    node: Any = data
    for part in path.removeprefix("$.").split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _matches(rule: dict[str, Any], data: dict[str, Any]) -> bool:
    """The Choice rule operators this state machine uses, as Step Functions evaluates them."""
    if "And" in rule:
        return all(_matches(inner, data) for inner in rule["And"])
    if "Or" in rule:
        return any(_matches(inner, data) for inner in rule["Or"])
    if "Not" in rule:
        return not _matches(rule["Not"], data)
    present, value = _lookup(data, rule["Variable"])
    if "IsPresent" in rule:
        return present == rule["IsPresent"]
    # A comparison on a path the input lacks fails the execution
    # (https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html).
    if not present:
        raise AssertionError(f"{rule['Variable']} is not in the input {data}")
    if "IsNull" in rule:
        return (value is None) == rule["IsNull"]
    if "IsNumeric" in rule:
        return _is_number(value) == rule["IsNumeric"]
    if "NumericGreaterThanEquals" in rule:
        return _is_number(value) and value >= rule["NumericGreaterThanEquals"]
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value == rule["BooleanEquals"]
    if "StringMatches" in rule:  # "*" is any run of characters (no escapes used here)
        pattern = ".*".join(re.escape(part) for part in rule["StringMatches"].split("*"))
        return isinstance(value, str) and re.fullmatch(pattern, value, re.DOTALL) is not None
    if "NumericGreaterThanEqualsPath" in rule:
        return value >= _lookup(data, rule["NumericGreaterThanEqualsPath"])[1]
    raise AssertionError(f"operator not covered by this evaluator: {rule}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _choose(state: dict[str, Any], data: dict[str, Any]) -> str:
    for rule in state["Choices"]:
        if _matches(rule, data):
            return rule["Next"]
    return state["Default"]


def _crawler_input(status: str, attempts: int) -> dict[str, Any]:
    return {
        "bucket": "b",
        "key": "incoming/f.csv",
        "crawler": {"output": {"crawler": "c", "status": status, "crawl_id": "x", "error": None}},
        "poll": {"attempts": attempts, "max_attempts": 360},
    }


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``data`` with ``value`` at the simple JSONPath ``path`` (a ResultPath)."""
    if path == "$":
        return value
    node = data
    parts = path.removeprefix("$.").split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def _parameters(template: Any, data: dict[str, Any]) -> Any:
    """A Pass state's Parameters: ``$.`` paths looked up; an intrinsic function is kept as
    its text (these tests follow the paths, not the messages)."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _path_or_intrinsic(value, data)
            else:
                out[key] = _parameters(value, data)
        return out
    return template


def _path_or_intrinsic(value: str, data: dict[str, Any]) -> Any:
    add = re.fullmatch(r"States\.MathAdd\((\$[.\w]+), (-?\d+)\)", value)
    if add:
        return _lookup(data, add.group(1))[1] + int(add.group(2))
    if not value.startswith("$."):
        return value
    found, looked = _lookup(data, value)
    assert found, f"{value} is not in the input {data}"
    return looked


TaskOutcome = Callable[[str, dict[str, Any]], tuple[bool, Any]]


def _walk(
    states: dict[str, Any], data: dict[str, Any], tasks: TaskOutcome, start: str
) -> tuple[list[str], dict[str, Any]]:
    """The states an execution enters from ``start`` until it ends, with its final data:
    ``tasks(name, data)`` gives each Task's outcome, ``(True, result)`` or ``(False, error)``
    (after its retries). Choice, Pass and Wait states run as Step Functions runs them."""
    path, name = [], start
    for _ in range(10_000):
        path.append(name)
        state = states[name]
        kind = state["Type"]
        if kind in ("Succeed", "Fail"):
            return path, data
        if kind == "Choice":
            name = _choose(state, data)
            continue
        if kind == "Pass":
            value = state["Result"] if "Result" in state else _parameters(state["Parameters"], data)
            data = _set(data, state.get("ResultPath", "$"), json.loads(json.dumps(value)))
        elif kind == "Task":
            ok, value = tasks(name, data)
            if not ok:
                (catch,) = state["Catch"]
                data = _set(data, catch["ResultPath"], value)
                name = catch["Next"]
                continue
            if state.get("ResultPath", "$") is not None:
                data = _set(data, state.get("ResultPath", "$"), {"output": value})
        name = state["Next"]
    raise AssertionError(f"no end after 10,000 states: {path[-20:]}")


def _execution_input() -> dict[str, Any]:
    return {
        "bucket": "b",
        "key": "incoming/f.csv",
        "size": 10,
        "etag": "e",
        "version_id": "v",
        "sequencer": "s",
    }


def _tasks(
    start: dict[str, Any] | None = None,
    polls: list[dict[str, Any]] | None = None,
    load_error: dict[str, Any] | None = None,
) -> TaskOutcome:
    """Task outcomes: StartCrawler's result, PollCrawler's results in turn (then CRAWLED),
    the load's error (None: it succeeds)."""
    left = list(polls or [])

    def outcome(name: str, data: dict[str, Any]) -> tuple[bool, Any]:
        if name == "StartCrawler":
            return True, start or {"crawler": "c", "status": "STARTED", "error": None}
        if name == "PollCrawler":
            if left:
                result = left.pop(0)
                return ("status" in result), result
            return True, {"crawler": "c", "status": "CRAWLED", "crawl_id": "x", "error": None}
        if name in ("RunEtlJob", "RunSparkEtlJob"):
            return (load_error is None), (load_error or {"id": "jr", "state": "SUCCEEDED"})
        return True, {}

    return outcome


def _order(states: dict[str, Any], before_load: bool) -> dict[str, Any]:
    """The states with CrawlOrder set as the stage parameter would set it."""
    changed = json.loads(json.dumps(states))
    changed["CrawlOrder"]["Result"]["before_load"] = before_load
    return changed


# ------------------------------------------------------------------ bucket and rule


def _pipeline_rules(resources: dict[str, Any]) -> dict[str, Any]:
    """The rules that start the state machine (the others watch the Glue jobs for alarms)."""
    return {
        name: body
        for name, body in _of_type(resources, "AWS::Events::Rule").items()
        if {"Ref": "PipelineStateMachine"}
        in [target["Arn"] for target in body["Properties"]["Targets"]]
    }


def test_one_rule_starts_the_pipeline_for_every_object_under_incoming_of_the_data_bucket(resources):
    rules = _pipeline_rules(resources)
    assert len(rules) == 1
    rule = next(iter(rules.values()))["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [{"Ref": "DataBucket"}]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "incoming/"}]
    assert rule.get("EventBusName", "default") == "default"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "PipelineStateMachine"}


def _packaged_rule_pattern(resources: dict[str, Any]) -> dict[str, Any]:
    """The rule's pattern as deployed, the data bucket's name in place of its Ref."""
    (rule,) = _pipeline_rules(resources).values()
    text = json.dumps(rule["Properties"]["EventPattern"])
    return json.loads(text.replace(json.dumps({"Ref": "DataBucket"}), json.dumps(rule_keys.BUCKET)))


@pytest.mark.parametrize(
    ("key", "starts"), rule_keys.KEYS, ids=[k or "<empty>" for k, _ in rule_keys.KEYS]
)
def test_the_packaged_rule_matches_exactly_the_objects_created_under_incoming(
    resources, key, starts
):
    pattern = _packaged_rule_pattern(resources)
    assert rule_keys.documented_match(pattern, rule_keys.object_created(key)) is starts


def test_the_packaged_rule_ignores_other_buckets_and_other_s3_events(resources):
    pattern = _packaged_rule_pattern(resources)
    key = "incoming/flights.csv"
    assert rule_keys.documented_match(pattern, rule_keys.object_created(key))
    assert not rule_keys.documented_match(pattern, rule_keys.object_created(key, bucket="other"))
    deleted = rule_keys.object_created(key, detail_type="Object Deleted")
    assert not rule_keys.documented_match(pattern, deleted)


def test_rule_input_carries_bucket_key_size_etag_version_id_and_sequencer_as_json_values(
    resources,
):
    (rule,) = _pipeline_rules(resources).values()
    transformer = rule["Properties"]["Targets"][0]["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "bucket": "$.detail.bucket.name",
        "key": "$.detail.object.key",
        "size": "$.detail.object.size",
        "etag": "$.detail.object.etag",
        "version_id": "$.detail.object.version-id",
        "sequencer": "$.detail.object.sequencer",
    }
    # Unquoted placeholders: EventBridge inserts JSON values, null for an absent version-id.
    event = {
        "bucket": "b",
        "key": "incoming/a.csv",
        "size": 7,
        "etag": "e",
        "version_id": None,
        "sequencer": "617f08299329d189",
    }
    rendered = re.sub(
        r"<(\w+)>", lambda m: json.dumps(event[m.group(1)]), transformer["InputTemplate"]
    )
    assert json.loads(rendered) == event


def test_the_rule_input_is_the_typed_execution_input_backfill_and_smoke_send(resources):
    (rule,) = _pipeline_rules(resources).values()
    transformer = rule["Properties"]["Targets"][0]["InputTransformer"]
    assert tuple(transformer["InputPathsMap"]) == ExecutionInput.field_names()
    head = {"ContentLength": 7, "ETag": '"e"', "VersionId": "v1"}
    sent = ExecutionInput.from_head("b", "incoming/a b.csv", head)
    rendered = re.sub(
        r"<(\w+)>", lambda m: json.dumps(getattr(sent, m.group(1))), transformer["InputTemplate"]
    )
    assert json.loads(rendered) == json.loads(sent.to_json())
    assert ExecutionInput.from_json(rendered) == sent


def test_rule_target_role_may_only_start_this_state_machine(resources):
    (rule,) = _pipeline_rules(resources).values()
    role_name = rule["Properties"]["Targets"][0]["RoleArn"]["Fn::GetAtt"][0]
    statements = [s for name, s in _policy_statements(resources) if name == role_name]
    assert statements == [
        {
            "Effect": "Allow",
            "Action": ["states:StartExecution"],
            "Resource": {"Ref": "PipelineStateMachine"},
        }
    ]


def test_data_bucket_is_private_encrypted_versioned_and_emits_eventbridge_events(resources):
    props = resources["DataBucket"]["Properties"]
    assert props["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }


def test_data_bucket_is_retained_except_when_the_deploy_that_created_it_rolls_back(resources):
    # A rolled-back first deploy deletes it, so the next deploy can create its fixed name again
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-deletionpolicy.html);
    # a stack deletion, a removal from the template or a replacement keeps it and its data.
    bucket = resources["DataBucket"]
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate"
    assert bucket["UpdateReplacePolicy"] == "Retain"


def test_data_bucket_policy_denies_requests_without_tls(resources):
    policy = resources["DataBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "DataBucket"}
    deny = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(
        s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and s["Principal"] == "*"
        and {"Fn::GetAtt": ["DataBucket", "Arn"]} in s["Resource"]
        for s in deny
    )


# ------------------------------------------------------------------ IAM


def test_no_allow_statement_grants_a_wildcard_action(resources):
    offenders = [
        (name, action)
        for name, statement in _policy_statements(resources)
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
        if "*" in action
    ]
    assert offenders == []


def test_every_wildcard_resource_is_an_unscopable_action_with_a_written_reason(resources):
    wildcard = [
        frozenset(_as_list(statement["Action"]))
        for _, statement in _policy_statements(resources)
        if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"])
    ]
    assert wildcard, "the stack is expected to need a few unscopable actions"
    assert [actions for actions in wildcard if actions not in WILDCARD_RESOURCE_ALLOWED] == []
    source = (REPO_ROOT / "serverless.yml").read_text(encoding="utf-8")
    assert len(re.findall(r'#\s*Resource "\*":', source)) == len(wildcard)


def test_each_function_has_a_role_of_its_own(resources):
    roles = [resources[name]["Properties"]["Role"] for name in FUNCTIONS]
    assert len({json.dumps(role, sort_keys=True) for role in roles}) == len(FUNCTIONS)
    assert "IamRoleLambdaExecution" not in resources


def test_data_api_statements_are_scoped_to_the_workgroup_or_cluster(resources):
    statements = [
        s
        for _, s in _policy_statements(resources)
        if "redshift-data:ExecuteStatement" in _as_list(s["Action"])
    ]
    assert statements
    for statement in statements:
        targets = list(_branches(statement["Resource"]))
        assert "*" not in targets
        rendered = json.dumps(targets)
        assert "WorkgroupArn" in rendered and ":cluster:" in rendered


def test_copy_role_reads_only_staging_and_dimensions(resources):
    role = resources["RedshiftCopyRole"]["Properties"]
    actions = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
    }
    assert actions <= {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}
    objects = json.dumps(role["Policies"])
    assert "/staging/*" in objects and "/dimensions/*" in objects
    assert "/incoming/" not in objects and "/reports/" not in objects
    namespace = resources["RedshiftNamespace"]["Properties"]
    assert namespace["IamRoles"] == [{"Fn::GetAtt": ["RedshiftCopyRole", "Arn"]}]


def test_redshift_admin_password_is_generated_into_secrets_manager_never_written(resources):
    secret = resources["RedshiftAdminSecret"]["Properties"]
    assert secret["GenerateSecretString"]["GenerateStringKey"] == "password"
    namespace = resources["RedshiftNamespace"]["Properties"]
    assert "{{resolve:secretsmanager:" in namespace["AdminUserPassword"]["Fn::Sub"]
    for name in FUNCTIONS:
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert not any("PASSWORD" in key for key in env)


def test_existing_workgroup_or_cluster_replaces_the_created_one(template, resources):
    assert set(template["Parameters"]["RedshiftTarget"]["AllowedValues"]) == {
        "serverless",
        "workgroup",
        "cluster",
    }
    for name in ("RedshiftNamespace", "RedshiftWorkgroup", "RedshiftAdminSecret"):
        assert resources[name]["Condition"] == "CreateRedshiftServerless"
    assert {"WorkgroupSubnetIds", "WorkgroupSecurityGroupIds"} <= set(template["Parameters"])


# ------------------------------------------------------------------ state machine


def test_state_machine_has_every_pipeline_state(states, definition):
    assert definition["StartAt"] == "NoteExecution"
    expected = {
        "CrawlOrder": "Pass",
        "PrepareWarehouse": "Task",
        "StartCrawler": "Task",
        "CrawlFirst": "Choice",
        "ResetPollBudget": "Pass",
        "WaitForCrawler": "Wait",
        "PollCrawler": "Task",
        "CountPoll": "Pass",
        "CrawlerDone": "Choice",
        "Crawled": "Pass",
        "CrawlFailed": "Pass",
        "CrawlTimedOut": "Pass",
        "CrawlerUnavailable": "Pass",
        "CrawlerCallFailed": "Pass",
        "CrawlResolved": "Choice",
        "ChooseEngine": "Choice",
        "RunEtlJob": "Task",
        "RunSparkEtlJob": "Task",
        "LoadEnded": "Choice",
        "LoadOutcome": "Choice",
        "NotifySuccess": "Task",
        "IsLoadSkipped": "Choice",
        "NotifyDuplicate": "Task",
        "NotifySuperseded": "Task",
        "RecordFailure": "Task",
        "NotifyFailure": "Task",
        "NoteExecution": "Pass",
        "ComposeSuccessNotice": "Task",
        "PlainSuccessNotice": "Pass",
        "ComposeDuplicateNotice": "Task",
        "PlainDuplicateNotice": "Pass",
        "ComposeSupersededNotice": "Task",
        "PlainSupersededNotice": "Pass",
        "ComposeFailureNotice": "Task",
        "PlainFailureNotice": "Pass",
        "Succeeded": "Succeed",
        "Failed": "Fail",
    }
    assert {name: states[name]["Type"] for name in expected} == expected


def test_lambda_steps_invoke_the_functions_and_keep_the_input(states):
    for state_name, function in (
        ("PrepareWarehouse", "PrepareWarehouseLambdaFunction"),
        ("StartCrawler", "StartCrawlerLambdaFunction"),
        ("PollCrawler", "PollCrawlerLambdaFunction"),
    ):
        state = states[state_name]
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        assert state["Parameters"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
        assert state["Parameters"]["Payload.$"] == "$"
        assert state["ResultPath"].startswith("$.")


def test_every_task_retries_transient_errors_with_backoff_and_catches_all(states):
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        assert state["Retry"], name
        assert all(retrier["BackoffRate"] > 1 for retrier in state["Retry"]), name
        (catch,) = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        expected = {
            "NotifyFailure": "Failed",
            "RecordFailure": "ComposeFailureNotice",
            "ComposeSuccessNotice": "PlainSuccessNotice",
            "ComposeDuplicateNotice": "PlainDuplicateNotice",
            "ComposeSupersededNotice": "PlainSupersededNotice",
            "ComposeFailureNotice": "PlainFailureNotice",
            "NotifyDuplicate": "Succeeded",
            "NotifySuperseded": "Succeeded",
            # A crawler step's failure is a warning, never the execution's end.
            "StartCrawler": "CrawlerCallFailed",
            "PollCrawler": "CrawlerCallFailed",
            "RunEtlJob": "LoadEnded",
            "RunSparkEtlJob": "LoadEnded",
        }.get(name, "RecordFailure")
        assert catch["Next"] == expected, name
        assert catch.get("ResultPath", "$") != "$", f"{name} would lose the file it reports"
        retried = {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}
        if state["Resource"].endswith(":lambda:invoke"):
            assert retried >= LAMBDA_TRANSIENT_ERRORS, name
    assert "WarehouseThrottledError" in {
        error for retrier in states["PrepareWarehouse"]["Retry"] for error in retrier["ErrorEquals"]
    }


def test_a_busy_crawler_is_waited_for_never_an_error_nor_a_pass(states):
    retried = {e for r in states["StartCrawler"]["Retry"] for e in r["ErrorEquals"]}
    assert "CrawlerRunningException" not in retried  # the library never raises it now
    assert states["StartCrawler"]["Next"] != "RunEtlJob"


def test_a_poll_loop_fits_an_execution_s_history_many_times_over(states):
    """Each poll costs about ten history events; AWS allows 25,000 per execution."""
    from flightpipe.crawler import MIN_POLL_SECONDS

    polls = states["ResetPollBudget"]["Result"]["max_attempts"]
    assert polls * MIN_POLL_SECONDS >= 3600  # an hour of crawls ahead at the shortest wait
    assert polls * 10 <= 25_000 / 5


def test_poll_loop_polls_at_once_then_waits_as_the_poll_says_counting_attempts(states):
    reset = states["ResetPollBudget"]
    assert reset["Type"] == "Pass" and reset["Result"]["attempts"] == 0
    assert reset["Next"] == "PollCrawler"  # the first poll does not wait
    assert states["PollCrawler"]["Next"] == "CountPoll"
    assert "States.MathAdd($.poll.attempts, 1)" in states["CountPoll"]["Parameters"].values()
    assert states["CountPoll"]["Next"] == "CrawlerDone"
    wait = states["WaitForCrawler"]
    assert wait["SecondsPath"] == "$.crawler.output.next_poll_s" and "Seconds" not in wait
    assert wait["Next"] == "PollCrawler"


@pytest.mark.parametrize(
    ("status", "attempts", "expected"),
    [
        ("WAITING", 1, "WaitForCrawler"),
        ("CRAWLED", 3, "Crawled"),
        ("CRAWLED", 360, "Crawled"),
        ("FAILED", 2, "CrawlFailed"),
        ("UNAVAILABLE", 1, "CrawlerUnavailable"),
        ("WAITING", 360, "CrawlTimedOut"),
        ("UNKNOWN", 1, "CrawlFailed"),
    ],
)
def test_crawler_choice_paths(states, status, attempts, expected):
    data = _crawler_input(status, attempts)
    assert _choose(states["CrawlerDone"], data) == expected


def test_every_crawl_outcome_is_recorded_in_crawl_and_the_run_goes_on(states):
    outcomes = {
        "Crawled": "CRAWLED",
        "CrawlFailed": "FAILED",
        "CrawlTimedOut": "TIMED_OUT",
        "CrawlerUnavailable": "UNAVAILABLE",
        "CrawlerCallFailed": "UNAVAILABLE",
    }
    for name, status in outcomes.items():
        state = states[name]
        assert state["ResultPath"] == "$.crawl", name  # never $.error: the load's own
        assert state["Parameters"]["status"] == status, name
        assert state["Parameters"]["before_load.$"] == "$.crawl.before_load", name
        assert state["Next"] == "CrawlResolved", name
        warning = state["Parameters"].get("warning.$")
        assert (warning is None) == (name == "Crawled"), name
    assert "$.crawler.output.error" in states["CrawlFailed"]["Parameters"]["warning.$"]
    assert "$.crawler.output.error" in states["CrawlerUnavailable"]["Parameters"]["warning.$"]
    assert "$.crawl_error.Cause" in states["CrawlerCallFailed"]["Parameters"]["warning.$"]


def test_the_crawl_order_is_the_stage_parameter_as_a_boolean(states):
    order = states["CrawlOrder"]
    assert order["Result"] == {
        "before_load": DEFAULT_PARAMS["crawlBeforeLoad"],
        "status": "PENDING",
        "warning": None,
    }
    assert DEFAULT_PARAMS["crawlBeforeLoad"] is True
    assert order["ResultPath"] == "$.crawl" and order["Next"] == "PrepareWarehouse"


def test_crawl_before_load_polls_until_crawled_then_loads(states):
    polls = [{"crawler": "c", "status": "WAITING", "crawl_id": "x", "error": None}] * 2
    path, data = _walk(
        _order(states, True), _execution_input(), _tasks(polls=polls), "CheckVersionId"
    )
    assert path == [
        "CheckVersionId",
        "CheckEtag",
        "CheckSequencer",
        "CrawlOrder",
        "PrepareWarehouse",
        "StartCrawler",
        "CrawlFirst",
        "ResetPollBudget",
        *["PollCrawler", "CountPoll", "CrawlerDone", "WaitForCrawler"] * 2,
        "PollCrawler",
        "CountPoll",
        "CrawlerDone",
        "Crawled",
        "CrawlResolved",
        "ChooseEngine",
        "RunEtlJob",
        "LoadEnded",
        "LoadOutcome",
        "ComposeSuccessNotice",
        "NotifySuccess",
        "Succeeded",
    ]
    assert data["crawl"] == {
        "before_load": True,
        "status": "CRAWLED",
        "crawl_id": "x",
        "warning": None,
    }


def test_crawl_beside_load_loads_at_once_then_waits_for_the_crawl(states):
    polls = [{"crawler": "c", "status": "WAITING", "crawl_id": "x", "error": None}]
    path, data = _walk(
        _order(states, False), _execution_input(), _tasks(polls=polls), "CheckVersionId"
    )
    assert path == [
        "CheckVersionId",
        "CheckEtag",
        "CheckSequencer",
        "CrawlOrder",
        "PrepareWarehouse",
        "StartCrawler",
        "CrawlFirst",
        "ChooseEngine",
        "RunEtlJob",
        "LoadEnded",
        "ResetPollBudget",
        "PollCrawler",
        "CountPoll",
        "CrawlerDone",
        "WaitForCrawler",
        "PollCrawler",
        "CountPoll",
        "CrawlerDone",
        "Crawled",
        "CrawlResolved",
        "LoadOutcome",
        "ComposeSuccessNotice",
        "NotifySuccess",
        "Succeeded",
    ]
    assert data["crawl"]["status"] == "CRAWLED"


FAILED_CRAWL = {"crawler": "c", "status": "FAILED", "crawl_id": "x", "error": "boom"}
UNAVAILABLE = {"crawler": "c", "status": "UNAVAILABLE", "error": "AccessDeniedException"}
LAMBDA_ERROR = {"Error": "Lambda.Unknown", "Cause": "timed out"}


@pytest.mark.parametrize("before_load", [True, False])
@pytest.mark.parametrize(
    ("start", "polls", "status"),
    [
        (None, [FAILED_CRAWL], "FAILED"),
        (None, [UNAVAILABLE], "UNAVAILABLE"),
        (None, [LAMBDA_ERROR], "UNAVAILABLE"),
        (UNAVAILABLE, [], "UNAVAILABLE"),
    ],
)
def test_whatever_becomes_of_the_crawl_the_file_loads_and_the_notice_carries_it(
    states, before_load, start, polls, status
):
    path, data = _walk(
        _order(states, before_load), _execution_input(), _tasks(start, polls), "CheckVersionId"
    )
    assert path[-4:] == ["LoadOutcome", "ComposeSuccessNotice", "NotifySuccess", "Succeeded"]
    assert path.count("RunEtlJob") == 1 and "RecordFailure" not in path
    assert (data["crawl"]["status"], data["crawl"]["before_load"]) == (status, before_load)
    assert data["crawl"]["warning"]
    assert "error" not in data  # the load's own outcome alone
    if start is not None:
        assert "PollCrawler" not in path  # a crawler unavailable from the start is not polled
    notice = states["ComposeSuccessNotice"]["Parameters"]["Payload"]
    assert notice["warning.$"] == "$.crawl.warning"


def test_a_crawl_that_never_succeeds_within_the_budget_is_a_warning_not_a_failure(states):
    budget = states["ResetPollBudget"]["Result"]["max_attempts"]
    waiting = {"crawler": "c", "status": "WAITING", "crawl_id": None, "error": None}
    for before_load in (True, False):
        path, data = _walk(
            _order(states, before_load),
            _execution_input(),
            _tasks(polls=[waiting] * budget),
            "CheckVersionId",
        )
        assert path.count("PollCrawler") == budget
        assert data["crawl"]["status"] == "TIMED_OUT"
        assert path[-2:] == ["NotifySuccess", "Succeeded"]


def test_a_failed_load_beside_the_crawl_waits_for_the_crawl_then_records_the_failure(states):
    error = {"Error": "States.TaskFailed", "Cause": "s3://b/incoming/f.csv: FAILED: x"}
    path, data = _walk(
        _order(states, False),
        _execution_input(),
        _tasks(polls=[FAILED_CRAWL], load_error=error),
        "CheckVersionId",
    )
    assert path[path.index("RunEtlJob") :] == [
        "RunEtlJob",
        "LoadEnded",
        "ResetPollBudget",
        "PollCrawler",
        "CountPoll",
        "CrawlerDone",
        "CrawlFailed",
        "CrawlResolved",
        "LoadOutcome",
        "IsLoadSkipped",
        "RecordFailure",
        "ComposeFailureNotice",
        "NotifyFailure",
        "Failed",
    ]
    assert data["error"] == error and data["crawl"]["status"] == "FAILED"


@pytest.mark.parametrize(
    "event",
    [
        {"bucket": "b", "key": "incoming/a.csv", "size": 1, "etag": "e", "version_id": None},
        {"bucket": "b", "key": "incoming/a.csv", "size": 1, "etag": None, "version_id": None},
        {"bucket": "b", "key": "incoming/a.csv", "size": 1, "sequencer": None},
        {"bucket": "b", "key": "incoming/a.csv", "size": 1},
    ],
)
def test_null_or_missing_version_id_etag_and_sequencer_become_empty_strings(
    states, event, definition
):
    data = dict(event)
    name = definition["StartAt"]
    while states[name]["Type"] in ("Choice", "Pass"):
        state = states[name]
        if state["Type"] == "Choice":
            name = _choose(state, data)
            continue
        data[state["ResultPath"].removeprefix("$.")] = state.get("Result", state.get("Parameters"))
        name = state["Next"]
    assert name == "PrepareWarehouse"
    assert [data[field] for field in ("version_id", "etag", "sequencer")] == [
        event.get(field) or "" for field in ("version_id", "etag", "sequencer")
    ]


def test_etl_job_runs_synchronously_with_the_files_arguments(states):
    job = states["RunEtlJob"]
    assert job["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert job["Parameters"]["Arguments"] == {
        "--bucket.$": "$.bucket",
        "--key.$": "$.key",
        "--execution_id.$": "$$.Execution.Id",
        "--version_id.$": "$.version_id",
        "--etag.$": "$.etag",
        "--sequencer.$": "$.sequencer",
        "--summary_key.$": "States.Format('reports/{}.json', $$.Execution.Name)",
    }
    retried = {error for retrier in job["Retry"] for error in retrier["ErrorEquals"]}
    assert {"Glue.ConcurrentRunsExceededException", "Glue.ThrottlingException"} <= retried
    assert "States.TaskFailed" not in retried
    assert job["Next"] == "LoadEnded"


def test_the_spark_task_runs_the_spark_job_exactly_as_the_python_shell_task_runs_its_job(states):
    shell, spark = states["RunEtlJob"], states["RunSparkEtlJob"]
    assert shell["Parameters"]["JobName"] == {"Ref": "EtlJob"}
    assert spark["Parameters"]["JobName"] == {"Ref": "SparkEtlJob"}
    # Same arguments, result, retries, catch and next state: both engines end in the same
    # notices and the same ledger rows.
    for field in ("Resource", "ResultSelector", "ResultPath", "Retry", "Catch", "Next"):
        assert spark[field] == shell[field], field
    assert spark["Parameters"]["Arguments"] == shell["Parameters"]["Arguments"]


def test_the_engine_is_chosen_after_the_crawl_or_beside_it_and_leads_to_either_job(states):
    assert _choose(states["CrawlerDone"], _crawler_input("CRAWLED", 1)) == "Crawled"
    assert states["CrawlResolved"]["Default"] == "ChooseEngine"  # the load has not run yet
    assert states["CrawlFirst"]["Default"] == "ChooseEngine"  # crawlBeforeLoad false
    choose = states["ChooseEngine"]
    targets = {rule["Next"] for rule in choose["Choices"]} | {choose["Default"]}
    assert targets == {"RunEtlJob", "RunSparkEtlJob"}
    assert choose["Default"] == "RunEtlJob"
    entered_from = {
        name
        for name, state in states.items()
        if state.get("Next") in targets
        or any(rule.get("Next") in targets for rule in state.get("Choices", []))
    }
    assert entered_from == {"ChooseEngine"}


def _spark_threshold(states: dict[str, Any]) -> Any:
    (threshold,) = [
        rule["NumericGreaterThanEquals"]
        for rule in states["ChooseEngine"]["Choices"]
        if rule.get("Next") == "RunSparkEtlJob"
    ]
    return threshold


def _size_input(**size: Any) -> dict[str, Any]:
    return {"bucket": "b", "key": "incoming/f.csv", "etag": "e", "version_id": "v", **size}


def test_the_threshold_is_the_stage_parameter_as_a_number(states):
    threshold = _spark_threshold(states)
    assert _is_number(threshold)  # a NumericGreaterThanEquals on a string is invalid ASL
    assert threshold == DEFAULT_PARAMS["sparkThresholdBytes"] == 1 << 30


def test_the_choice_routes_by_the_object_size_against_the_threshold(states):
    threshold = _spark_threshold(states)
    choose = states["ChooseEngine"]
    routes = [
        (_size_input(size=0), "RunEtlJob"),
        (_size_input(size=threshold - 1), "RunEtlJob"),
        (_size_input(size=threshold), "RunSparkEtlJob"),
        (_size_input(size=threshold * 8), "RunSparkEtlJob"),
        # No usable size: the Python shell job, the engine every file used before.
        (_size_input(), "RunEtlJob"),
        (_size_input(size=None), "RunEtlJob"),
        (_size_input(size=str(threshold * 8)), "RunEtlJob"),
    ]
    for data, expected in routes:
        assert _choose(choose, data) == expected, data


def test_the_emulated_step_functions_routes_the_packaged_choice_as_step_functions_does(states):
    """The local stack runs the packaged definition on moto: its Choice must agree."""
    import time

    import boto3
    from moto import mock_aws

    choose = json.loads(json.dumps(states["ChooseEngine"]))
    for rule in choose["Choices"]:
        if "NumericGreaterThanEquals" in rule:
            rule["NumericGreaterThanEquals"] = 100
    pass_states = {
        name: {"Type": "Pass", "Result": name, "ResultPath": "$.engine", "End": True}
        for name in ("RunEtlJob", "RunSparkEtlJob")
    }
    definition = {"StartAt": "ChooseEngine", "States": {"ChooseEngine": choose, **pass_states}}
    inputs = [{}, {"size": None}, {"size": 99}, {"size": 100}, {"size": "100"}]
    expected = ["RunEtlJob", "RunEtlJob", "RunEtlJob", "RunSparkEtlJob", "RunEtlJob"]
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="choose-engine",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        chosen = []
        for number, data in enumerate(inputs):
            execution = sfn.start_execution(
                stateMachineArn=arn, name=f"e{number}", input=json.dumps(data)
            )["executionArn"]
            for _ in range(100):
                described = sfn.describe_execution(executionArn=execution)
                if described["status"] != "RUNNING":
                    break
                time.sleep(0.05)
            assert described["status"] == "SUCCEEDED", described
            chosen.append(json.loads(described["output"])["engine"])
    assert chosen == expected


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (
            '{"ErrorMessage": "s3://b/incoming/f.csv: DUPLICATE: DuplicateDelivery: ..."}',
            "ComposeDuplicateNotice",
        ),
        (
            '{"ErrorMessage": "s3://b/incoming/f.csv: SUPERSEDED: SupersededVersion: ..."}',
            "ComposeSupersededNotice",
        ),
        ('{"ErrorMessage": "s3://b/incoming/f.csv: FAILED: StatementError: ..."}', "RecordFailure"),
    ],
)
def test_a_duplicate_delivery_or_a_superseded_version_ends_as_a_notice_not_a_failure(
    states, cause, expected
):
    data = {"bucket": "b", "key": "incoming/f.csv", "error": {"Error": "x", "Cause": cause}}
    assert _choose(states["IsLoadSkipped"], data) == expected
    assert states["NotifyDuplicate"]["Next"] == "Succeeded"
    assert states["NotifySuperseded"]["Next"] == "Succeeded"
    assert states["ComposeDuplicateNotice"]["Parameters"]["Payload"]["status"] == "DUPLICATE"
    assert states["ComposeSupersededNotice"]["Next"] == "NotifySuperseded"
    assert states["ComposeSupersededNotice"]["Parameters"]["Payload"]["status"] == "SUPERSEDED"


def test_the_job_s_skip_errors_are_the_names_the_state_machine_matches(states):
    from flightpipe.etl.job import DuplicateDelivery, SupersededVersion

    patterns = [rule["StringMatches"] for rule in states["IsLoadSkipped"]["Choices"]]
    assert patterns == [f"*{DuplicateDelivery.__name__}*", f"*{SupersededVersion.__name__}*"]
    assert str(DuplicateDelivery("s3://b/k", "v")).startswith(DuplicateDelivery.__name__)
    assert str(SupersededVersion("s3://b/k", "v", "0A")).startswith(SupersededVersion.__name__)


def test_every_way_to_the_failure_notice_records_the_failure_first(states):
    """Only RecordFailure leads to the failure notice, and every failure leads to RecordFailure."""

    def successors(state: dict[str, Any]) -> set[str]:
        found = {state.get("Next"), state.get("Default")}
        found |= {rule["Next"] for rule in state.get("Choices", [])}
        found |= {catch["Next"] for catch in state.get("Catch", [])}
        return found - {None}

    into_compose = {n for n, s in states.items() if "ComposeFailureNotice" in successors(s)}
    assert into_compose == {"RecordFailure"}
    into_notice = {n for n, s in states.items() if "NotifyFailure" in successors(s)}
    assert into_notice == {"ComposeFailureNotice", "PlainFailureNotice"}
    into_record = {name for name, state in states.items() if "RecordFailure" in successors(state)}
    # The crawl is not among them: whatever becomes of it, the load goes on.
    assert into_record == {"PrepareWarehouse", "IsLoadSkipped", "NotifySuccess"}


def test_the_failure_record_goes_to_the_prepare_function_with_the_execution_and_its_error(
    states,
):
    record = states["RecordFailure"]
    assert record["Resource"] == "arn:aws:states:::lambda:invoke"
    assert record["Parameters"]["FunctionName"] == {
        "Fn::GetAtt": ["PrepareWarehouseLambdaFunction", "Arn"]
    }
    assert record["Parameters"]["Payload"] == {
        "record_failure": {
            "bucket.$": "$.bucket",
            "key.$": "$.key",
            "version_id.$": "$.version_id",
            "etag.$": "$.etag",
            "sequencer.$": "$.sequencer",
            "execution_id.$": "$$.Execution.Id",
            "error.$": "$.error.Error",
            "cause.$": "$.error.Cause",
        }
    }
    # Whatever becomes of the record, the notice keeps the execution's own error.
    assert record["ResultPath"] not in ("$", "$.error")
    assert record["Catch"][0]["ResultPath"] not in ("$", "$.error")
    assert "WarehouseThrottledError" in _retried(record)


@pytest.mark.parametrize("state", ["RunEtlJob", "RunSparkEtlJob"])
def test_a_job_at_its_concurrency_limit_is_waited_for_long_enough_for_a_burst(states, state):
    """1,000 files at 10 runs at a time take well over an hour to drain."""
    (retrier,) = [
        r
        for r in states[state]["Retry"]
        if r["ErrorEquals"] == ["Glue.ConcurrentRunsExceededException"]
    ]
    delays, delay = [], float(retrier["IntervalSeconds"])
    for _ in range(retrier["MaxAttempts"]):
        delays.append(min(delay, retrier["MaxDelaySeconds"]))
        delay *= retrier["BackoffRate"]
    assert sum(delays) / 2 >= 3 * 3600  # full jitter: half the delays on average
    assert retrier["JitterStrategy"] == "FULL"  # runs waiting together do not retry together
    assert retrier["MaxAttempts"] * 3 <= 25_000 / 10  # history events stay far below the cap


def test_notices_are_composed_from_the_outcome_and_the_summary_then_published(states):
    for kind, status, end in (
        ("Success", "SUCCEEDED", "Succeeded"),
        ("Duplicate", "DUPLICATE", "Succeeded"),
        ("Superseded", "SUPERSEDED", "Succeeded"),
        ("Failure", "FAILED", "Failed"),
    ):
        compose = states[f"Compose{kind}Notice"]
        assert compose["Resource"] == "arn:aws:states:::lambda:invoke"
        assert compose["Parameters"]["FunctionName"] == {
            "Fn::GetAtt": ["ComposeNoticeLambdaFunction", "Arn"]
        }
        payload = compose["Parameters"]["Payload"]
        assert (payload["status"], payload["bucket.$"], payload["key.$"]) == (
            status,
            "$.bucket",
            "$.key",
        )
        assert (payload["execution_id.$"], payload["started.$"]) == (
            "$$.Execution.Id",
            "$$.Execution.StartTime",
        )
        assert payload["summary_key.$"] == "States.Format('reports/{}.json', $$.Execution.Name)"
        assert (compose["ResultPath"], compose["Next"]) == ("$.notice", f"Notify{kind}")
        # Should the function fail, the notice still goes out with what the state machine knows.
        plain = states[f"Plain{kind}Notice"]
        assert plain["Type"] == "Pass" and plain["ResultPath"] == "$.notice"
        assert plain["Parameters"]["message"]["status"] == status
        assert plain["Next"] == f"Notify{kind}"
        notify = states[f"Notify{kind}"]
        assert notify["Resource"] == "arn:aws:states:::sns:publish"
        assert "NotificationsTopic" in json.dumps(notify["Parameters"]["TopicArn"])
        assert (notify["Parameters"]["Subject.$"], notify["Parameters"]["Message.$"]) == (
            "$.notice.subject",
            "$.notice.message",
        )
        assert notify["Next"] == end
    failure = states["ComposeFailureNotice"]["Parameters"]["Payload"]
    assert (failure["error.$"], failure["cause.$"]) == ("$.error.Error", "$.error.Cause")


def test_the_notice_function_reads_only_the_summaries_and_the_state_machine_may_invoke_it(
    resources,
):
    (policy,) = resources["ComposeNoticeRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _actions(s))]
    assert [(_actions(s), json.dumps(s["Resource"])) for s in s3] == [
        (["s3:GetObject"], json.dumps({"Fn::Sub": "${DataBucket.Arn}/reports/*"}))
    ]
    role = resources["PipelineStateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (invoke,) = [s for s in role["Statement"] if "lambda:InvokeFunction" in _actions(s)]
    assert {"Fn::GetAtt": ["ComposeNoticeLambdaFunction", "Arn"]} in invoke["Resource"]


def test_every_lambda_step_names_its_execution_for_the_logs(states, definition):
    """NoteExecution puts the execution's id in the state each Lambda step receives."""
    assert definition["StartAt"] == "NoteExecution"
    note = states["NoteExecution"]
    assert (note["Type"], note["Parameters"], note["ResultPath"], note["Next"]) == (
        "Pass",
        {"id.$": "$$.Execution.Id"},
        "$.execution",
        "CheckVersionId",
    )


def _actions(statement):
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_notices_topic_is_encrypted_and_email_subscription_is_optional(resources):
    topic = resources["NotificationsTopic"]["Properties"]
    assert topic["KmsMasterKeyId"]
    (subscription,) = _of_type(resources, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["Protocol"] == "email"


# ------------------------------------------------------------------ Glue


def test_etl_job_is_a_python_shell_39_job_with_the_analytics_library_set(resources):
    assert set(_of_type(resources, "AWS::Glue::Job")) == set(JOBS)
    props = resources["EtlJob"]["Properties"]
    assert props["Command"]["Name"] == "pythonshell"
    assert props["Command"]["PythonVersion"] == "3.9"
    assert props["Command"]["ScriptLocation"]["Fn::Sub"].endswith("/glue/scripts/flight_etl.py")
    args = props["DefaultArguments"]
    assert args["library-set"] == "analytics"
    assert args["--extra-py-files"]["Fn::Sub"].endswith(
        "/glue/lib/flightpipe-0.1.0-py3-none-any.whl"
    )
    assert {
        "--data_bucket",
        "--redshift_database",
        "--redshift_workgroup",
        "--redshift_cluster_id",
        "--redshift_secret_arn",
        "--copy_role_arn",
        "--reject_threshold",
    } <= set(args)
    assert args["--reject_threshold"] == "0.05"
    assert int(props["ExecutionProperty"]["MaxConcurrentRuns"]) >= 20  # ~1,000 files an hour
    assert props["MaxCapacity"] in (0.0625, 1)
    assert props["Timeout"] > 0


def test_spark_job_is_a_glue_5_spark_job_sized_by_the_stage_parameters(resources):
    props = resources["SparkEtlJob"]["Properties"]
    assert props["GlueVersion"] == "5.0"
    assert props["Command"]["Name"] == "glueetl"
    assert props["Command"]["PythonVersion"] == "3"
    location = props["Command"]["ScriptLocation"]["Fn::Sub"]
    assert location == "s3://${DataBucket}/glue/scripts/flight_etl_spark.py"
    assert props["WorkerType"] == DEFAULT_PARAMS["sparkWorkerType"] == "G.1X"
    assert props["NumberOfWorkers"] == DEFAULT_PARAMS["sparkWorkers"] == 2
    assert (
        props["ExecutionProperty"]["MaxConcurrentRuns"]
        == (DEFAULT_PARAMS["sparkMaxConcurrentRuns"])
    )
    assert "MaxCapacity" not in props  # workers, not MaxCapacity, size a Glue 2.0+ job
    assert props["MaxRetries"] == 0
    assert props["Timeout"] > 0
    shell = resources["EtlJob"]["Properties"]
    assert props["Role"] == shell["Role"] == {"Fn::GetAtt": ["EtlJobRole", "Arn"]}
    assert props["SecurityConfiguration"] == shell["SecurityConfiguration"]


def test_both_jobs_take_the_same_arguments_and_wheel(resources):
    shell = dict(resources["EtlJob"]["Properties"]["DefaultArguments"])
    spark = dict(resources["SparkEtlJob"]["Properties"]["DefaultArguments"])
    assert set(shell) >= SHELL_ONLY_ARGUMENTS
    # The same wheel: on the Python shell path, pip-installed on every Spark node.
    assert spark.pop("--additional-python-modules") == shell.pop("--extra-py-files")
    # Only the Spark job's JVM takes a logging configuration (glue_scripts/log4j2.properties).
    assert spark.pop("--extra-files") == {
        "Fn::Sub": "s3://${DataBucket}/glue/scripts/log4j2.properties"
    }
    assert spark == {key: value for key, value in shell.items() if key not in SHELL_ONLY_ARGUMENTS}


def test_the_state_machine_may_run_both_jobs_and_nothing_else_of_glue(resources):
    glue = [
        s
        for name, s in _policy_statements(resources)
        if name == "PipelineStateMachineRole"
        and any(a.startswith("glue:") for a in _as_list(s["Action"]))
    ]
    (statement,) = glue
    assert set(statement["Action"]) == {
        "glue:StartJobRun",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:BatchStopJobRun",
    }
    jobs = [resource["Fn::Sub"].rsplit(":job/", 1)[1] for resource in statement["Resource"]]
    assert jobs == ["${EtlJob}", "${SparkEtlJob}"]


def test_the_deploy_uploads_every_job_s_entry_script(template, resources):
    state = json.loads((SERVERLESS_DIR / "serverless-state.json").read_text(encoding="utf-8"))
    assets = state["service"]["custom"]["glueAssets"]
    uploaded = {assets["scriptsPrefix"] + Path(script).name for script in assets["scripts"]}
    named = {
        resources[job]["Properties"]["Command"]["ScriptLocation"]["Fn::Sub"].split("}/", 1)[1]
        for job in JOBS
    }
    assert named == uploaded
    assert all((REPO_ROOT / script).is_file() for script in assets["scripts"])
    # ... and every file a job's --extra-files names, beside them.
    files = {assets["scriptsPrefix"] + Path(name).name for name in assets["files"]}
    extra = {
        uri["Fn::Sub"].split("}/", 1)[1]
        for job in JOBS
        for name, uri in resources[job]["Properties"]["DefaultArguments"].items()
        if name == "--extra-files"
    }
    assert extra == files == {"glue/scripts/log4j2.properties"}
    assert all((REPO_ROOT / name).is_file() for name in assets["files"])


@pytest.fixture(scope="session")
def packaged_with_zero_threshold() -> dict[str, Any]:
    """The template `sls package --param sparkThresholdBytes=0` makes (reused while fresh)."""
    return package(REPO_ROOT, params={"sparkThresholdBytes": "0"}).template


def test_a_threshold_given_on_the_command_line_is_packaged_as_a_number(
    packaged_with_zero_threshold,
):
    machine = packaged_with_zero_threshold["Resources"]["PipelineStateMachine"]
    text, _ = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    states = json.loads(text)["States"]
    threshold = _spark_threshold(states)
    assert threshold == 0 and _is_number(threshold)
    assert _choose(states["ChooseEngine"], _size_input(size=0)) == "RunSparkEtlJob"
    assert _choose(states["ChooseEngine"], _size_input(size=None)) == "RunEtlJob"


def test_crawl_before_load_false_on_the_command_line_is_packaged_as_a_boolean():
    template = package(REPO_ROOT, params={"crawlBeforeLoad": "false"}).template
    machine = template["Resources"]["PipelineStateMachine"]
    text, _ = machine["Properties"]["DefinitionString"]["Fn::Sub"]
    states = json.loads(text)["States"]
    assert states["CrawlOrder"]["Result"]["before_load"] is False
    data = {"crawl": states["CrawlOrder"]["Result"], "crawler": {"output": {"status": "STARTED"}}}
    assert _choose(states["CrawlFirst"], data) == "ChooseEngine"


def test_a_crawl_order_that_is_no_boolean_stops_packaging():
    from flightpipe_local.template import PackagingError

    with pytest.raises(PackagingError, match="strToBool"):
        package(REPO_ROOT, params={"crawlBeforeLoad": "sometimes"})


def test_crawler_crawls_incoming_of_the_data_bucket(resources):
    (crawler,) = _of_type(resources, "AWS::Glue::Crawler").values()
    (target,) = crawler["Properties"]["Targets"]["S3Targets"]
    assert target["Path"] == {"Fn::Sub": "s3://${DataBucket}/incoming/"}
    assert crawler["Properties"]["DatabaseName"] == {"Ref": "GlueDatabase"}


def test_crawler_crawls_in_s3_event_mode_from_the_crawler_event_queue(resources):
    # https://docs.aws.amazon.com/glue/latest/dg/crawler-s3-event-notifications.html
    props = resources["IncomingCrawler"]["Properties"]
    assert props["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_EVENT_MODE"}
    (target,) = props["Targets"]["S3Targets"]
    assert target["EventQueueArn"] == {"Fn::GetAtt": ["CrawlerEventQueue", "Arn"]}
    assert target["DlqEventQueueArn"] == {"Fn::GetAtt": ["CrawlerEventDeadLetterQueue", "Arn"]}
    # Event mode reads every object of an event's folder: no sampling (not supported there).
    assert "SampleSize" not in target


def test_data_bucket_sends_events_under_incoming_straight_to_the_crawler_queue(resources):
    bucket = resources["DataBucket"]
    notification = bucket["Properties"]["NotificationConfiguration"]
    # The pipeline still starts from EventBridge; the queue only feeds the crawler.
    assert notification["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    queue_configurations = notification["QueueConfigurations"]
    assert {c["Event"] for c in queue_configurations} == {
        "s3:ObjectCreated:*",
        "s3:ObjectRemoved:*",
    }
    for configuration in queue_configurations:
        assert configuration["Queue"] == {"Fn::GetAtt": ["CrawlerEventQueue", "Arn"]}
        assert configuration["Filter"] == {
            "S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"}]}
        }
    # S3 validates the destination when the notification is written: policy first.
    assert "CrawlerEventQueuePolicy" in _as_list(bucket["DependsOn"])


def test_crawler_queue_accepts_messages_only_from_s3_for_the_data_bucket(resources):
    bucket_name = resources["DataBucket"]["Properties"]["BucketName"]["Fn::Sub"]
    policy = resources["CrawlerEventQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "CrawlerEventQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["CrawlerEventQueue", "Arn"]}
    # The bucket's ARN is built from the same name string as its BucketName, so the policy
    # does not depend on the bucket, which depends on the policy.
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{bucket_name}"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }
    text = json.dumps(policy)
    assert '{"Ref": "DataBucket"}' not in text
    assert '["DataBucket", ' not in text
    assert "${DataBucket" not in text
    assert bucket_name == "flightpipe-dev-${AWS::AccountId}-${AWS::Region}"


def test_crawler_queues_are_encrypted_and_unprocessed_events_are_set_aside(resources):
    queue = resources["CrawlerEventQueue"]["Properties"]
    dead_letters = resources["CrawlerEventDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert dead_letters["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["CrawlerEventDeadLetterQueue", "Arn"]
    }
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) >= 1


def test_crawler_role_consumes_only_its_own_event_queues(resources):
    statements = [s for name, s in _policy_statements(resources) if name == "CrawlerRole"]
    sqs = [s for s in statements if any(a.startswith("sqs:") for a in _as_list(s["Action"]))]
    queues = [
        {"Fn::GetAtt": ["CrawlerEventQueue", "Arn"]},
        {"Fn::GetAtt": ["CrawlerEventDeadLetterQueue", "Arn"]},
    ]
    actions = set()
    for statement in sqs:
        assert all(resource in queues for resource in _as_list(statement["Resource"]))
        actions |= set(_as_list(statement["Action"]))
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= actions
    (send,) = [s for s in sqs if "sqs:SendMessage" in _as_list(s["Action"])]
    assert _as_list(send["Resource"]) == [queues[1]]


# ------------------------------------------------------------------ Lambda


def test_functions_run_python312_handlers_with_the_contract_environment(resources):
    for name, handler in FUNCTIONS.items():
        props = resources[name]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == handler
        assert set(props["Environment"]["Variables"]) >= {
            "DATA_BUCKET",
            "AIRPORTS_KEY",
            "CRAWLER_NAME",
            "REDSHIFT_DATABASE",
            "REDSHIFT_WORKGROUP",
            "REDSHIFT_CLUSTER_ID",
            "REDSHIFT_SECRET_ARN",
            "REDSHIFT_COPY_ROLE_ARN",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_LOG_LEVEL",
        }


def test_lambda_package_is_small_and_holds_no_pandas_tests_or_tooling(template):
    assert PACKAGE_ZIP.stat().st_size < 10 * 1024 * 1024
    names = zipfile.ZipFile(PACKAGE_ZIP).namelist()
    assert {"handlers/prepare_warehouse.py", "flightpipe/sql.py", "sql/schema.sql"} <= set(names)
    banned = ("pandas/", "numpy/", "tests/", "node_modules/", ".venv", "emulator/flightpipe_local/")
    assert [name for name in names if name.startswith(banned)] == []
    assert any(name.startswith("aws_lambda_powertools/") for name in names)


def test_outputs_name_bucket_state_machine_topic_and_warehouse(template):
    outputs = template["Outputs"]
    assert outputs["GlueJobName"]["Value"] == {"Ref": "EtlJob"}
    assert outputs["SparkGlueJobName"]["Value"] == {"Ref": "SparkEtlJob"}
    assert outputs["DataBucketName"]["Value"] == {"Ref": "DataBucket"}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "PipelineStateMachine"}
    assert outputs["NotificationsTopicArn"]["Value"] == {"Ref": "NotificationsTopic"}
    assert {"RedshiftWorkgroupName", "RedshiftClusterId"} <= set(outputs)


# ------------------------------------------------------------------ linters


def _run_linter(*args: str) -> subprocess.CompletedProcess[str]:
    tool = LINT_VENV / "bin" / args[0]
    assert tool.exists(), f"{tool} missing: run `make package` (creates {LINT_VENV.name})"
    return _run_credential_free([str(tool), *args[1:]])


def test_cfn_lint_reports_no_errors_or_warnings(template):
    result = _run_linter("cfn-lint", str(TEMPLATE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_checkov_reports_no_failed_checks(template):
    result = _run_linter(
        "checkov",
        "--skip-download",
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "-f",
        str(TEMPLATE),
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [c["check_id"] + " " + c["resource"] for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0
    assert result.returncode == 0


def _lint_policies(*args: str) -> subprocess.CompletedProcess[str]:
    return _run_linter("python", str(REPO_ROOT / "scripts" / "lint_policies.py"), *args)


def test_every_policy_document_passes_the_policy_lint(template):
    result = _lint_policies(str(TEMPLATE))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def _policy_template(statement: dict[str, Any]) -> dict[str, Any]:
    """A template whose one managed policy holds ``statement`` in deploy mode "b" only."""
    return {
        "Parameters": {"Mode": {"Type": "String", "Default": "a", "AllowedValues": ["a", "b"]}},
        "Conditions": {"ModeB": {"Fn::Equals": [{"Ref": "Mode"}, "b"]}},
        "Resources": {
            "Data": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "data-bucket"}},
            "Access": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "s3:GetObject",
                                "Resource": {"Fn::Sub": "${Data.Arn}/incoming/*"},
                            },
                            {"Fn::If": ["ModeB", statement, {"Ref": "AWS::NoValue"}]},
                        ],
                    }
                },
            },
        },
    }


@pytest.mark.parametrize(
    ("statement", "finding"),
    [
        (
            # GetObject takes an object ARN, not the bucket's.
            {
                "Sid": "ReadData",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": {"Fn::GetAtt": ["Data", "Arn"]},
            },
            "Access statement ReadData: RESOURCE_MISMATCH (MEDIUM) No resources match for the "
            'given action: [{"action": "s3:GetObject", "required_format": "arn:*:s3:::*/*"}]',
        ),
        (
            # The condition key is s3:prefix.
            {
                "Sid": "ListIncoming",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": {"Fn::GetAtt": ["Data", "Arn"]},
                "Condition": {"StringLike": {"s3:prefixes": "incoming/*"}},
            },
            "Access statement ListIncoming: UNKNOWN_CONDITION_FOR_ACTION (MEDIUM) Unknown "
            "condition for action: Unknown condition s3:prefixes for action s3:ListBucket",
        ),
    ],
    ids=["action-on-a-resource-type-it-does-not-take", "unknown-condition-key"],
)
def test_the_policy_lint_fails_on_a_statement_aws_would_not_apply_even_in_one_deploy_mode_only(
    tmp_path, statement, finding
):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(_policy_template(statement)), encoding="utf-8")
    no_suppressions = tmp_path / "policy_lint.yaml"
    no_suppressions.write_text("", encoding="utf-8")
    result = _lint_policies(str(path), "--config", str(no_suppressions))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines() == [finding]


def test_a_policy_lint_suppression_needs_a_reason_and_a_finding_it_matches(tmp_path):
    path = tmp_path / "template.json"
    path.write_text(json.dumps(_policy_template({"Ref": "AWS::NoValue"})), encoding="utf-8")
    config = tmp_path / "policy_lint.yaml"
    config.write_text("NO_VERSION:\n  ignore_locations:\n    - policy: Access\n", encoding="utf-8")
    unexplained = _lint_policies(str(path), "--config", str(config))
    assert unexplained.returncode == 2
    assert "needs a reason" in unexplained.stderr
    config.write_text(
        "NO_VERSION:\n  ignore_locations:\n    - policy: Access\n"
        "      reason: The policy is written without a Version on purpose.\n",
        encoding="utf-8",
    )
    stale = _lint_policies(str(path), "--config", str(config))
    assert stale.returncode == 1
    assert stale.stdout.splitlines() == [
        'policy_lint.yaml: NO_VERSION {"policy": "Access"} matches no finding: remove it'
    ]


def test_every_checkov_skip_says_why(resources):
    skips = [
        (name, skip)
        for name, body in resources.items()
        for skip in body.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    assert [name for name, skip in skips if len(skip.get("comment", "").split()) < 5] == []


# ------------------------------------------------------------------ review findings


def _retried(state: dict[str, Any]) -> set[str]:
    return {error for retrier in state["Retry"] for error in retrier["ErrorEquals"]}


def test_throttling_errors_the_library_raises_are_retried_with_backoff(states):
    from flightpipe.retryable import ServiceThrottledError
    from flightpipe.warehouse import WarehouseThrottledError

    throttled = {
        "PrepareWarehouse": {ServiceThrottledError.__name__, WarehouseThrottledError.__name__},
        "StartCrawler": {ServiceThrottledError.__name__},
        "PollCrawler": {ServiceThrottledError.__name__},
    }
    for name, errors in throttled.items():
        assert errors <= _retried(states[name]), name
        for retrier in states[name]["Retry"]:
            if errors & set(retrier["ErrorEquals"]):
                assert retrier["BackoffRate"] > 1 and retrier["MaxAttempts"] >= 3, name


def test_prepare_function_outlives_its_data_api_waits(resources):
    from flightpipe.warehouse.data_api import LAMBDA_RESERVE_SECONDS

    timeout = resources["PrepareWarehouseLambdaFunction"]["Properties"]["Timeout"]
    assert timeout > LAMBDA_RESERVE_SECONDS + 30
    source = (REPO_ROOT / "handlers" / "prepare_warehouse.py").read_text(encoding="utf-8")
    assert "DataApiWarehouse.within_lambda(" in source
    assert "DataApiWarehouse(" not in source


def test_data_api_statement_actions_only_reach_the_callers_own_statements(resources):
    (statement,) = [
        s
        for _, s in _policy_statements(resources)
        if "redshift-data:DescribeStatement" in _as_list(s["Action"])
    ]
    assert set(statement["Action"]) == {
        "redshift-data:DescribeStatement",
        "redshift-data:GetStatementResult",
        "redshift-data:CancelStatement",
    }
    condition = statement["Condition"]["StringEquals"]["redshift-data:statement-owner-iam-userid"]
    assert condition == {"Fn::Join": ["", ["$", "{aws:userid}"]]}  # renders ${aws:userid}


def test_namespace_has_no_default_role_and_copy_role_trusts_only_this_account(resources):
    assert "DefaultIamRoleArn" not in resources["RedshiftNamespace"]["Properties"]
    trust = resources["RedshiftCopyRole"]["Properties"]["AssumeRolePolicyDocument"]
    for statement in trust["Statement"]:
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {
            "Ref": "AWS::AccountId"
        }


def test_noncurrent_versions_of_staged_files_expire(resources):
    rules = resources["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    staging = [r for r in rules if r.get("Prefix") == "staging/" and r["Status"] == "Enabled"]
    assert any(
        r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays", 99) <= 7 for r in staging
    )


def test_pipeline_statements_never_run_with_the_admin_secret(resources):
    for name in FUNCTIONS:
        env = resources[name]["Properties"]["Environment"]["Variables"]
        assert env["REDSHIFT_SECRET_ARN"] == {"Ref": "ExistingSecretArn"}, name
    for job in JOBS:
        assert resources[job]["Properties"]["DefaultArguments"]["--redshift_secret_arn"] == {
            "Ref": "ExistingSecretArn"
        }, job
    # Only the prepare function gets the admin secret, to bootstrap.
    prepare_env = resources["PrepareWarehouseLambdaFunction"]["Properties"]["Environment"]
    assert "RedshiftAdminSecret" in json.dumps(
        prepare_env["Variables"]["REDSHIFT_ADMIN_SECRET_ARN"]
    )
    readers = {
        name
        for name, s in _policy_statements(resources)
        if "secretsmanager:GetSecretValue" in _as_list(s["Action"])
        and "RedshiftAdminSecret" in json.dumps(s["Resource"])
    }
    assert readers == {"PrepareWarehouseRole"}


def test_lambda_and_job_roles_are_one_database_role_with_iam_credentials(resources):
    from flightpipe.sql import read_sql
    from flightpipe.warehouse.setup import PIPELINE_ROLE

    for name in ("PrepareWarehouseRole", "EtlJobRole"):
        tags = {t["Key"]: t["Value"] for t in resources[name]["Properties"]["Tags"]}
        assert tags["RedshiftDbRoles"] == PIPELINE_ROLE, name
    assert f"TO ROLE {PIPELINE_ROLE};" in read_sql("grants.sql")
    (credentials,) = [
        s
        for _, s in _policy_statements(resources)
        if "redshift-serverless:GetCredentials" in _as_list(s["Action"])
    ]
    rendered = json.dumps(list(_branches(credentials["Resource"])))
    assert "WorkgroupArn" in rendered and "ExistingWorkgroupArn" in rendered


def test_roles_tagged_with_database_roles_may_read_the_tag_at_sign_in_with_iam_credentials(
    template, resources
):
    """Redshift Serverless grants the RedshiftDbRoles tag's roles at sign-in only to an identity
    allowed tag:GetResources and tag:GetTagKeys ("Signing in using IAM credentials":
    https://docs.aws.amazon.com/redshift/latest/mgmt/redshift-iam-access-federated-db-roles.html);
    without them the pipeline's first statement fails: permission denied for schema airlines."""
    tagged = {
        name
        for name, body in _of_type(resources, "AWS::IAM::Role").items()
        if any(t["Key"] == "RedshiftDbRoles" for t in body["Properties"].get("Tags", []))
    }
    assert tagged == {"PrepareWarehouseRole", "EtlJobRole"}
    for name in tagged:
        managed = resources[name]["Properties"]["ManagedPolicyArns"]
        assert {"Ref": "WarehouseAccessPolicy"} in managed, name
    statements = resources["WarehouseAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Fn::If": [
            "UseWorkgroupIamCredentials",
            {
                "Sid": "ReadDbRolesTagAtSignIn",
                "Effect": "Allow",
                "Action": ["tag:GetResources", "tag:GetTagKeys"],
                "Resource": "*",
            },
            {"Ref": "AWS::NoValue"},
        ]
    } in statements
    # The same condition as the workgroup's GetCredentials: only IAM credentials on a workgroup.
    (credentials,) = [
        s["Fn::If"]
        for s in statements
        if "Fn::If" in s and s["Fn::If"][1].get("Sid") == "WorkgroupIamCredentials"
    ]
    assert credentials[0] == "UseWorkgroupIamCredentials"
    assert template["Conditions"]["UseWorkgroupIamCredentials"] == {
        "Fn::And": [
            {"Condition": "UseWorkgroup"},
            {"Fn::Not": [{"Condition": "HasExistingSecret"}]},
        ]
    }
    # Nowhere else: no other role reads tags.
    readers = {
        name
        for name, s in _policy_statements(resources)
        if any(a.startswith("tag:") for a in _as_list(s["Action"]))
    }
    assert readers == {"WarehouseAccessPolicy"}


def test_prepare_function_writes_only_copy_manifests(resources):
    writes = [
        s
        for name, s in _policy_statements(resources)
        if name == "PrepareWarehouseRole" and "s3:PutObject" in _as_list(s["Action"])
    ]
    assert [s["Resource"] for s in writes] == [{"Fn::Sub": "${DataBucket.Arn}/staging/manifests/*"}]


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        # osls itself refuses "_" while resolving ${sls:stage}, before any plugin runs.
        ("Dev_1", "Invalid stage name. Stage names may contain only ASCII letters, numbers"),
        # Upper case passes osls; the stage-name plugin stops it before packaging.
        ("Prod", 'Stage "Prod" cannot be deployed'),
        ("Dev-1", 'Stage "Dev-1" cannot be deployed'),
        # The data bucket, <service>-<stage>-<account>-<region>, would pass S3's 63 characters.
        (
            "team-alpha-integration-test-01",
            'Stage "team-alpha-integration-test-01" cannot be deployed in us-east-1',
        ),
    ],
)
def test_a_stage_redshift_would_reject_fails_packaging_with_a_clear_message(stage, message):
    before = TEMPLATE.stat().st_mtime if TEMPLATE.exists() else None
    result = _run_credential_free(
        ["npx", "--no-install", "sls", "package", "--stage", stage, "--region", "us-east-1"]
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output
    # Nothing was packaged: the template of the last good package is untouched.
    assert (TEMPLATE.stat().st_mtime if TEMPLATE.exists() else None) == before


CLUSTER_WITHOUT_DATABASE_USER = (
    "redshiftTarget=cluster needs redshiftDbUser (IAM credentials) or existingSecretArn "
    "(a database user's secret): without either no load can sign in. Add "
    '--param="redshiftDbUser=<database user>" or --param="existingSecretArn=<secret ARN>".'
)


def test_a_cluster_target_without_a_database_user_or_secret_fails_packaging_in_one_line():
    before = TEMPLATE.stat().st_mtime if TEMPLATE.exists() else None
    result = _run_credential_free(
        [
            *("npx", "--no-install", "sls", "package", "--stage", "dev", "--region", "us-east-1"),
            *("--param", "redshiftTarget=cluster", "--param", "existingClusterId=analytics"),
        ]
    )
    assert result.returncode != 0
    assert CLUSTER_WITHOUT_DATABASE_USER in (result.stdout + result.stderr).splitlines()
    # Refused before anything was packaged: the template of the last good package is untouched.
    assert (TEMPLATE.stat().st_mtime if TEMPLATE.exists() else None) == before


@pytest.mark.parametrize(
    "identity",
    [
        {"redshiftDbUser": "flightpipe_loader"},
        {"existingSecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:loader-AbCdEf"},
    ],
    ids=["redshiftDbUser", "existingSecretArn"],
)
def test_a_cluster_target_with_a_database_user_or_a_secret_packages(identity):
    params = {"redshiftTarget": "cluster", "existingClusterId": "analytics", **identity}
    parameters = package(REPO_ROOT, params=params).template["Parameters"]
    assert parameters["RedshiftTarget"]["Default"] == "cluster"
    assert parameters["RedshiftDbUser"]["Default"] == identity.get("redshiftDbUser", "")
    assert parameters["ExistingSecretArn"]["Default"] == identity.get("existingSecretArn", "")


def test_stage_check_follows_the_redshift_serverless_name_rule():
    plugin = (REPO_ROOT / ".serverless_plugins" / "stage-name.js").read_text(encoding="utf-8")
    assert "/^[a-z0-9-]{3,64}$/" in plugin
    assert "stage-name" in (REPO_ROOT / "serverless.yml").read_text(encoding="utf-8")


# ------------------------------------------------------------------ one name for each prefix


def test_the_stack_uses_the_bucket_layout_and_defaults_the_python_code_uses(resources, definition):
    """serverless.yml and the ASL cannot import flightpipe.bucket_layout: their copies of
    the prefixes, the airports key and the reject threshold are held to it here."""
    (rule,) = _pipeline_rules(resources).values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": bucket_layout.INCOMING_PREFIX}]
    for state in ("RunEtlJob", "RunSparkEtlJob"):
        run_job = definition["States"][state]["Parameters"]["Arguments"]
        assert run_job["--summary_key.$"] == (
            f"States.Format('{bucket_layout.summary_key('{}')}', $$.Execution.Name)"
        ), state
    for job in JOBS:
        threshold = resources[job]["Properties"]["DefaultArguments"]["--reject_threshold"]
        assert float(threshold) == DEFAULT_REJECT_THRESHOLD, job
    for name in FUNCTIONS:
        variables = resources[name]["Properties"]["Environment"]["Variables"]
        assert variables["AIRPORTS_KEY"] == bucket_layout.DEFAULT_AIRPORTS_KEY


def test_every_function_logs_in_json_so_the_runtime_s_own_error_records_are_json_too(
    template: dict[str, Any],
) -> None:
    functions = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert functions
    for name, properties in functions.items():
        assert properties.get("LoggingConfig") == {
            "LogFormat": "JSON",
            "ApplicationLogLevel": "INFO",
            "SystemLogLevel": "INFO",
        }, name


def test_every_file_the_python_shell_job_takes_fits_its_memory_by_the_measured_peak_model(
    states, resources
):
    """The engine choice respects memory: by the peak model `make bench` fits on the wide BTS
    layout (bench/peak_model.json), the largest file ChooseEngine gives the Python shell job
    peaks within that job's memory, 1 GB at MaxCapacity 0.0625
    (https://docs.aws.amazon.com/glue/latest/dg/add-job-python.html)."""
    model = json.loads((REPO_ROOT / "bench" / "peak_model.json").read_text(encoding="utf-8"))
    assert resources["EtlJob"]["Properties"]["MaxCapacity"] == 0.0625
    assert model["shell_job_memory_mib"] == 1024
    threshold = _spark_threshold(states)
    largest_shell_file = threshold - 1
    assert _choose(states["ChooseEngine"], _size_input(size=largest_shell_file)) == "RunEtlJob"
    peak_mib = model["base_mib"] + model["mib_per_file_mib"] * largest_shell_file / 2**20
    assert peak_mib <= model["shell_job_memory_mib"], (peak_mib, model)
    holds = model["largest_file_mib_the_shell_job_holds"]
    assert holds is None or holds * 2**20 >= largest_shell_file
