"""How the local endpoint describes and refuses a call (flightpipe_local.iam, moto_iam)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from e2e_support import REPO_ROOT
from moto.iam.access_control import PermissionResult

from flightpipe_local.iam import calls, service_reference
from flightpipe_local.iam.enforcement import (
    IMPLEMENTED_CONDITION_KEYS,
    Authorizer,
    RecordedCall,
    access_key_of,
)
from flightpipe_local.iam.least_privilege import Grant, grants_of, role_report
from flightpipe_local.iam.patterns import like
from flightpipe_local.moto_iam import bucket_policy_permission, refusal
from flightpipe_local.template import package

REGION = "us-east-1"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:f"
CRAWLER = "arn:aws:glue:us-east-1:123456789012:crawler/c"
SCOPE = "20261203/us-east-1/s3/aws4_request"
ROLE = "arn:aws:iam::1:role/r"
NEUTRAL, DENIED = PermissionResult.NEUTRAL, PermissionResult.DENIED


def _condition_keys(node: Any) -> set[str]:
    """Every key tested in a Condition block anywhere in the template (``Fn::If`` included)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "Condition" and isinstance(value, dict):
                for keys in value.values():
                    found |= set(keys) if isinstance(keys, dict) else set()
            else:
                found |= _condition_keys(value)
    elif isinstance(node, list):
        for value in node:
            found |= _condition_keys(value)
    return found


def _implemented(key: str) -> bool:
    return any(
        like(pattern.replace("${TagKey}", "*"), key, None, ignore_case=True)
        for pattern in IMPLEMENTED_CONDITION_KEYS
    )


def test_every_condition_key_the_template_uses_is_one_the_local_iam_implements():
    used = _condition_keys(package(REPO_ROOT).template["Resources"])
    assert used, "the template's policies use condition keys"
    unimplemented = sorted(key for key in used if not _implemented(key))
    assert unimplemented == []


def test_the_implemented_condition_keys_are_keys_of_the_service_authorization_reference():
    for key in IMPLEMENTED_CONDITION_KEYS:
        service = key.split(":", 1)[0]
        assert service_reference.condition_key_known(key.replace("${TagKey}", "x"), service), key


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        (
            "lambda:InvokeFunction",
            {"FunctionName": FUNCTION},
            (FUNCTION,),
        ),
        (
            "lambda:InvokeFunction",
            {"FunctionName": "f"},
            (FUNCTION,),
        ),
        ("glue:StartCrawler", {"Name": "c"}, (CRAWLER,)),
        (
            "glue:ListCrawls",
            {"CrawlerName": "c"},
            (CRAWLER,),
        ),
        ("glue:StartJobRun", {"JobName": "j"}, ("arn:aws:glue:us-east-1:123456789012:job/j",)),
        (
            "sqs:ReceiveMessage",
            {"QueueUrl": "http://127.0.0.1:5000/123456789012/q"},
            ("arn:aws:sqs:us-east-1:123456789012:q",),
        ),
        (
            "redshift-data:ExecuteStatement",
            {"WorkgroupName": "wg", "Sql": "SELECT 1"},
            ("arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/wg",),
        ),
        (
            "redshift-data:BatchExecuteStatement",
            {"ClusterIdentifier": "c1"},
            ("arn:aws:redshift:us-east-1:123456789012:cluster:c1",),
        ),
        (
            "sns:Publish",
            {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "m"},
            ("arn:aws:sns:us-east-1:123456789012:t",),
        ),
        ("tag:GetResources", {}, ("*",)),
        ("redshift-data:DescribeStatement", {"Id": "x"}, ("*",)),
    ],
)
def test_a_call_is_authorized_on_the_arns_the_service_authorization_reference_names(
    action, params, expected
):
    assert calls.resources_of(action, params, REGION) == expected


def test_a_required_resource_the_request_does_not_name_is_an_error_never_a_star():
    with pytest.raises(calls.UnboundResource, match="crawler"):
        calls.resources_of("glue:StartCrawler", {}, REGION)


def test_a_metric_without_a_dataset_is_authorized_on_star_in_the_namespace_it_names():
    """PutMetricData's only resource type (a dataset) is optional; the namespace is the
    condition key the job role's grant tests (serverless.yml, PublishLoadMetrics)."""
    assert calls.resources_of("cloudwatch:PutMetricData", {"Namespace": "N"}, REGION) == ("*",)
    with pytest.raises(calls.UnboundResource):
        calls.resources_of("sqs:SendMessage", {}, REGION)
    authorizer = Authorizer()
    assert authorizer.context_for("cloudwatch:PutMetricData", {"Namespace": "Flightpipe"}) == {
        "cloudwatch:namespace": "Flightpipe"
    }
    assert authorizer.context_for("cloudwatch:PutMetricData", {}) == {}


def test_operations_with_another_iam_action_name_are_renamed():
    assert calls.iam_action("lambda", "Invoke") == "lambda:InvokeFunction"
    assert calls.iam_action("sqs", "DeleteMessageBatch") == "sqs:DeleteMessage"
    assert calls.iam_action("tagging", "GetResources") == "tag:GetResources"
    assert calls.iam_action("glue", "StartCrawler") == "glue:StartCrawler"


def test_a_head_of_a_given_version_is_get_object_version():
    assert calls.s3_action("GetObject", "HEAD", {"versionId": ["v1"]}) == "s3:GetObjectVersion"
    assert calls.s3_action("GetObject", "HEAD", {}) == "s3:GetObject"
    assert calls.s3_action("ListBucket", "GET", {"prefix": ["a/"]}) == "s3:ListBucket"


def test_a_listing_carries_its_prefix_as_the_s3_prefix_condition_key():
    context = calls.s3_context("s3:ListBucket", {"prefix": ["incoming/"], "list-type": ["2"]})
    assert context == {"s3:prefix": "incoming/"}
    assert calls.s3_context("s3:GetObject", {"prefix": ["x"]}) == {}


def test_the_access_key_is_read_from_the_signature_or_a_presigned_url():
    header = {"Authorization": f"AWS4-HMAC-SHA256 Credential=ASIAX/{SCOPE}, Signature=0"}
    assert access_key_of(header, {}) == "ASIAX"
    assert access_key_of({}, {"X-Amz-Credential": [f"AKIAY/{SCOPE}"]}) == "AKIAY"
    assert access_key_of({}, {}) is None


@pytest.mark.parametrize(
    ("signing_name", "status", "code", "body_type"),
    [
        ("glue", 400, "AccessDeniedException", "json"),
        ("states", 400, "AccessDeniedException", "json"),
        ("lambda", 403, "AccessDeniedException", "json"),
        ("sns", 403, "AuthorizationError", "xml"),
    ],
)
def test_a_refused_call_fails_with_the_error_its_service_returns(
    signing_name, status, code, body_type
):
    error = refusal(signing_name)("User: x is not authorized to perform: a on resource: r")
    assert error.code == status
    body = error.get_body()
    if body_type == "json":
        assert json.loads(body)["__type"] == code
    else:
        assert f"<Code>{code}</Code>" in body


DENY_INSECURE = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def test_the_bucket_policy_denying_insecure_transport_lets_tls_calls_through():
    policy = json.dumps(DENY_INSECURE).encode()
    assert bucket_policy_permission(policy, "s3:PutObject", "arn:aws:s3:::b/k") == NEUTRAL
    assert bucket_policy_permission(None, "s3:PutObject", "arn:aws:s3:::b/k") == NEUTRAL


def test_the_bucket_policy_denies_what_it_denies_outright():
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": "arn:aws:s3:::b/*",
            }
        ],
    }
    policy = json.dumps(deny).encode()
    assert bucket_policy_permission(policy, "s3:DeleteObject", "arn:aws:s3:::b/k") == DENIED


def test_the_least_privilege_report_sets_used_calls_against_granted_actions():
    grants = grants_of(
        [
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["glue:StartCrawler", "glue:GetCrawler"],
                        "Resource": CRAWLER,
                    },
                    {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"},
                ]
            }
        ]
    )
    assert grants[0] == Grant("glue:StartCrawler", CRAWLER)
    made = [
        RecordedCall(ROLE, "glue:StartCrawler", CRAWLER, True),
        RecordedCall(ROLE, "glue:StopCrawler", CRAWLER, False),
    ]
    report = role_report("r", grants, made)
    assert report["used"] == [{"action": "glue:StartCrawler", "resource": CRAWLER}]
    assert report["refused"] == [{"action": "glue:StopCrawler", "resource": CRAWLER}]
    assert [(u["action"], bool(u["kept_because"])) for u in report["unused"]] == [
        ("glue:GetCrawler", False),
        ("logs:PutLogEvents", True),
    ]
