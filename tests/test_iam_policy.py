"""IAM's policy evaluation for one request in one account, as the local stack applies it."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest

from flightpipe_local.iam.policy import (
    ALLOW,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    SUPPORTED_OPERATORS,
    ContextValue,
    Decision,
    PolicyError,
    Principal,
    Request,
    StatementRef,
    UnsupportedCondition,
    condition_keys_used,
    evaluate,
)

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/service/flightpipe-dev-etl"
SESSION_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/flightpipe-dev-etl/glue-run-1"
ETL = Principal.role_session(SESSION_ARN, ROLE_ARN)
OTHER_ROLE = Principal.role_session(
    f"arn:aws:sts::{ACCOUNT}:assumed-role/flightpipe-dev-crawler/crawl",
    f"arn:aws:iam::{ACCOUNT}:role/flightpipe-dev-crawler",
)
OBJECT = "arn:aws:s3:::flightpipe-data/incoming/2024/01/flights.csv"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:flightpipe-alerts"
RULE = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/flightpipe-uploads"
OWNER_KEY = "redshift-data:statement-owner-iam-userid"


def policy(*statements: Mapping[str, Any], name: str = "", version: str = "2012-10-17") -> dict:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version:
        document["Version"] = version
    if name:
        document["Id"] = name
    return document


def stmt(effect: str = "Allow", **elements: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, "Action": "s3:GetObject", "Resource": "*"}
    for element, value in elements.items():
        for replaced in {"NotAction": "Action", "NotResource": "Resource"}.get(element, "").split():
            statement.pop(replaced, None)
        statement[element] = value
    return statement


def decide(
    identity: list[dict],
    resource: tuple[dict, ...] = (),
    action: str = "s3:GetObject",
    arn: str = OBJECT,
    principal: Principal = ETL,
    context: Mapping[str, ContextValue] | None = None,
) -> Decision:
    request = Request(action=action, resource=arn, principal=principal, context=context or {})
    return evaluate(request, identity, resource)


def effect_with(condition: Mapping[str, Any], context: Mapping[str, ContextValue]) -> str:
    """The effect of one Allow statement carrying ``condition`` under ``context``."""
    return decide([policy(stmt(Condition=condition))], context=context).effect


# --- the decision ----------------------------------------------------------------------


def test_no_applicable_statement_is_an_implicit_deny() -> None:
    assert decide([]) == Decision(IMPLICIT_DENY, None)
    other_action = policy(stmt(Action="s3:PutObject"))
    assert decide([other_action]).effect == IMPLICIT_DENY


def test_identity_allow_allows_and_names_the_policy_and_sid() -> None:
    decision = decide([policy(stmt(Sid="ReadData"), name="etl-inline")])
    assert decision == Decision(ALLOW, StatementRef("identity", "etl-inline", "ReadData"))
    assert decision.allowed is True
    assert decision.describe() == "Allow by identity policy 'etl-inline', statement 'ReadData'"


def test_statements_without_sid_or_id_are_named_by_position() -> None:
    decision = decide([policy(stmt(Action="s3:PutObject")), policy(stmt(Action="x:Y"), stmt())])
    assert decision.statement == StatementRef("identity", "#1", "#1")


def test_explicit_deny_overrides_an_allow() -> None:
    allow = policy(stmt(Action="s3:*"), name="broad")
    deny = policy(stmt("Deny", Sid="NoRawReads", Resource="arn:aws:s3:::flightpipe-data/*"))
    decision = decide([allow, deny])
    assert decision == Decision(EXPLICIT_DENY, StatementRef("identity", "#1", "NoRawReads"))
    assert decision.allowed is False


def test_deny_in_a_resource_policy_overrides_an_identity_allow() -> None:
    bucket = policy(stmt("Deny", Principal="*", Sid="Locked"), name="bucket")
    decision = decide([policy(stmt())], (bucket,))
    assert decision == Decision(EXPLICIT_DENY, StatementRef("resource", "bucket", "Locked"))


def test_implicit_deny_in_identity_policies_does_not_stop_a_resource_policy_allow() -> None:
    bucket = policy(stmt(Principal={"AWS": ROLE_ARN}, Sid="EtlReads"), name="bucket")
    decision = decide([], (bucket,))
    assert decision == Decision(ALLOW, StatementRef("resource", "bucket", "EtlReads"))


def test_resource_policy_naming_the_session_allows_that_session_only() -> None:
    bucket = policy(stmt(Principal={"AWS": [SESSION_ARN]}))
    assert decide([], (bucket,)).effect == ALLOW
    assert decide([], (bucket,), principal=OTHER_ROLE).effect == IMPLICIT_DENY


def test_resource_policy_for_another_role_does_not_allow() -> None:
    bucket = policy(stmt(Principal={"AWS": OTHER_ROLE.role_arn}))
    assert decide([], (bucket,)).effect == IMPLICIT_DENY


@pytest.mark.parametrize("account", [ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"])
def test_resource_policy_allow_naming_the_account_only_delegates_to_identity_policies(
    account: str,
) -> None:
    bucket = policy(stmt(Principal={"AWS": account}))
    assert decide([], (bucket,)).effect == IMPLICIT_DENY
    assert decide([policy(stmt())], (bucket,)).effect == ALLOW


@pytest.mark.parametrize("account", [ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root"])
def test_resource_policy_deny_naming_the_account_applies_to_its_roles(account: str) -> None:
    bucket = policy(stmt("Deny", Principal={"AWS": account}))
    assert decide([policy(stmt())], (bucket,)).effect == EXPLICIT_DENY


def test_resource_policy_deny_naming_another_account_does_not_apply() -> None:
    bucket = policy(stmt("Deny", Principal={"AWS": "999999999999"}))
    assert decide([policy(stmt())], (bucket,)).effect == ALLOW


@pytest.mark.parametrize("everyone", ["*", {"AWS": "*"}, {"AWS": ["*"]}])
def test_resource_policy_wildcard_principal_allows_anyone(everyone: Any) -> None:
    bucket = policy(stmt(Principal=everyone))
    assert decide([], (bucket,)).effect == ALLOW
    assert decide([], (bucket,), principal=Principal.service("glue.amazonaws.com")).effect == ALLOW


def test_resource_policy_with_a_service_principal_allows_sqs_send_message() -> None:
    queue_policy = policy(
        {
            "Sid": "RuleSends",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
        },
        name="alerts-queue",
    )
    events = Principal.service("events.amazonaws.com")
    decision = decide([], (queue_policy,), "sqs:SendMessage", QUEUE, events)
    assert decision == Decision(ALLOW, StatementRef("resource", "alerts-queue", "RuleSends"))
    sns = Principal.service("sns.amazonaws.com")
    assert decide([], (queue_policy,), "sqs:SendMessage", QUEUE, sns).effect == IMPLICIT_DENY
    assert decide([], (queue_policy,), "sqs:SendMessage", QUEUE, ETL).effect == IMPLICIT_DENY


def test_trust_policy_without_resource_applies_to_the_role_it_is_attached_to() -> None:
    trust = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": ["glue.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    )
    glue = Principal.service("glue.amazonaws.com")
    assert decide([], (trust,), "sts:AssumeRole", ROLE_ARN, glue).effect == ALLOW
    lam = Principal.service("lambda.amazonaws.com")
    assert decide([], (trust,), "sts:AssumeRole", ROLE_ARN, lam).effect == IMPLICIT_DENY


def test_not_principal_deny_spares_a_caller_named_with_its_role_and_account() -> None:
    named = [SESSION_ARN, ROLE_ARN, f"arn:aws:iam::{ACCOUNT}:root"]
    bucket = policy(stmt("Deny", NotPrincipal={"AWS": named}))
    allow = [policy(stmt())]
    assert decide(allow, (bucket,)).effect == ALLOW
    assert decide(allow, (bucket,), principal=OTHER_ROLE).effect == EXPLICIT_DENY


def test_not_principal_deny_naming_only_the_session_still_denies_it() -> None:
    bucket = policy(stmt("Deny", NotPrincipal={"AWS": SESSION_ARN}))
    assert decide([policy(stmt())], (bucket,)).effect == EXPLICIT_DENY


def test_not_principal_allow_grants_everyone_but_the_named_service() -> None:
    bucket = policy(stmt(NotPrincipal={"Service": "sns.amazonaws.com"}))
    assert decide([], (bucket,)).effect == ALLOW
    sns = Principal.service("sns.amazonaws.com")
    assert decide([], (bucket,), principal=sns).effect == IMPLICIT_DENY


def test_role_session_reads_its_account_from_the_session_arn() -> None:
    session = Principal.role_session(SESSION_ARN, ROLE_ARN)
    assert session == Principal(SESSION_ARN, ACCOUNT, "AWS", ROLE_ARN)
    with pytest.raises(ValueError, match="not an assumed-role session ARN"):
        Principal.role_session(ROLE_ARN, ROLE_ARN)


# --- Action and Resource ---------------------------------------------------------------


def test_not_action_allows_every_action_but_the_listed_ones() -> None:
    everything_but_delete = [policy(stmt(NotAction=["s3:DeleteObject", "iam:*"]))]
    assert decide(everything_but_delete, action="s3:GetObject").effect == ALLOW
    assert decide(everything_but_delete, action="s3:deleteobject").effect == IMPLICIT_DENY
    assert decide(everything_but_delete, action="iam:PassRole").effect == IMPLICIT_DENY


def test_not_resource_allows_every_resource_but_the_listed_ones() -> None:
    outside_raw = [policy(stmt(NotResource="arn:aws:s3:::flightpipe-data/raw/*"))]
    assert decide(outside_raw).effect == ALLOW
    assert decide(outside_raw, arn="arn:aws:s3:::flightpipe-data/raw/x").effect == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("s3:Get*", "s3:GetObject", True),
        ("S3:get*", "s3:GetObject", True),
        ("s3:*Object", "s3:PutObject", True),
        ("s3:GetObjec?", "s3:GetObject", True),
        ("s3:GetObjec?", "s3:GetObjects", False),
        ("s3:Get*", "glue:GetTable", False),
        ("*", "glue:StartCrawler", True),
    ],
)
def test_action_wildcards_match_case_insensitively(
    pattern: str, action: str, matches: bool
) -> None:
    expected = ALLOW if matches else IMPLICIT_DENY
    assert decide([policy(stmt(Action=pattern))], action=action).effect == expected


# The examples of "Using wildcards in resource ARNs" in the Resource element's AWS page.
@pytest.mark.parametrize(
    ("key", "matches"),
    [
        ("1/test/object.jpg", True),
        ("1/2/test/object.jpg", True),
        ("1/2/test/3/object.jpg", True),
        ("1/2/3/test/4/object.jpg", True),
        ("1///test///object.jpg", True),
        ("1/test/.jpg", True),
        ("/test/object.jpg", True),
        ("1/test/", True),
        ("1-test/object.jpg", False),
        ("test/object.jpg", False),
        ("1/2/test.jpg", False),
    ],
)
def test_resource_wildcard_within_an_object_key(key: str, matches: bool) -> None:
    allow = [policy(stmt(Resource="arn:aws:s3:::bucket/*/test/*"))]
    expected = ALLOW if matches else IMPLICIT_DENY
    assert decide(allow, arn=f"arn:aws:s3:::bucket/{key}").effect == expected


def test_resource_question_mark_matches_exactly_one_character() -> None:
    allow = [policy(stmt(Resource="arn:aws:s3:::example?bucket/*"))]
    assert decide(allow, arn="arn:aws:s3:::example1bucket/k").effect == ALLOW
    assert decide(allow, arn="arn:aws:s3:::examplebucket/k").effect == IMPLICIT_DENY


def test_resource_matching_is_case_sensitive() -> None:
    allow = [policy(stmt(Resource="arn:aws:s3:::flightpipe-data/incoming/*"))]
    assert decide(allow, arn="arn:aws:s3:::flightpipe-data/Incoming/a.csv").effect == IMPLICIT_DENY


def test_resource_wildcard_stays_within_its_arn_segment() -> None:
    allow = [policy(stmt(Resource="arn:aws:someservice:*:111122223333:finance/*"))]
    other_account = (
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    )
    assert decide(allow, arn=other_account).effect == IMPLICIT_DENY
    in_account = "arn:aws:someservice:us-east-2:111122223333:finance/document.txt"
    assert decide(allow, arn=in_account).effect == ALLOW


def test_trailing_wildcard_expands_across_the_remaining_colons() -> None:
    assert decide([policy(stmt(Resource="arn:aws:s3:*"))]).effect == ALLOW
    function = [policy(stmt(Action="lambda:*", Resource="arn:aws:lambda:*:*:function:load*"))]
    qualified = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:load:live"
    assert decide(function, action="lambda:InvokeFunction", arn=qualified).effect == ALLOW


def test_action_without_resource_types_is_matched_only_by_a_star_resource() -> None:
    star = [policy(stmt(Action="tag:GetResources"))]
    specific = [policy(stmt(Action="tag:GetResources", Resource=OBJECT))]
    assert decide(star, action="tag:GetResources", arn="*").effect == ALLOW
    assert decide(specific, action="tag:GetResources", arn="*").effect == IMPLICIT_DENY


# --- policy variables ------------------------------------------------------------------


def test_userid_variable_in_a_resource_names_the_callers_own_prefix() -> None:
    own = [policy(stmt(Resource="arn:aws:s3:::flightpipe-data/home/${aws:userid}/*"))]
    context = {"aws:userid": "AROAEXAMPLE:glue-run-1"}
    mine = "arn:aws:s3:::flightpipe-data/home/AROAEXAMPLE:glue-run-1/a.csv"
    theirs = "arn:aws:s3:::flightpipe-data/home/AROAOTHER:x/a.csv"
    assert decide(own, arn=mine, context=context).effect == ALLOW
    assert decide(own, arn=theirs, context=context).effect == IMPLICIT_DENY


def test_variable_missing_from_the_context_makes_the_resource_match_nothing() -> None:
    own = [policy(stmt(Resource="arn:aws:s3:::flightpipe-data/${aws:PrincipalTag/team}/*"))]
    arn = "arn:aws:s3:::flightpipe-data/etl/a.csv"
    assert decide(own, arn=arn).effect == IMPLICIT_DENY
    assert decide(own, arn=arn, context={"aws:principaltag/TEAM": "etl"}).effect == ALLOW
    not_own = [policy(stmt("Deny", NotResource="arn:aws:s3:::b/${aws:username}/*"))]
    assert decide(not_own, arn=arn).effect == EXPLICIT_DENY


def test_variable_default_value_applies_when_the_key_is_missing() -> None:
    team = [policy(stmt(Resource="arn:aws:s3:::data-${aws:PrincipalTag/team, 'shared'}/*"))]
    assert decide(team, arn="arn:aws:s3:::data-shared/a").effect == ALLOW
    tagged = {"aws:PrincipalTag/team": "etl"}
    assert decide(team, arn="arn:aws:s3:::data-etl/a", context=tagged).effect == ALLOW
    assert decide(team, arn="arn:aws:s3:::data-shared/a", context=tagged).effect == IMPLICIT_DENY


def test_variables_are_literal_text_without_version_2012_10_17() -> None:
    old = [policy(stmt(Resource="arn:aws:s3:::b/${aws:username}/*"), version="2008-10-17")]
    context = {"aws:username": "ana"}
    assert decide(old, arn="arn:aws:s3:::b/ana/x", context=context).effect == IMPLICIT_DENY
    literal = "arn:aws:s3:::b/${aws:username}/x"
    assert decide(old, arn=literal, context=context).effect == ALLOW


def test_escape_variables_stand_for_literal_special_characters() -> None:
    star = [policy(stmt(Resource="arn:aws:s3:::b/${*}${?}${$}"))]
    assert decide(star, arn="arn:aws:s3:::b/*?$").effect == ALLOW
    assert decide(star, arn="arn:aws:s3:::b/ab$").effect == IMPLICIT_DENY


def test_a_substituted_value_is_never_a_wildcard() -> None:
    own = [policy(stmt(Resource="arn:aws:s3:::b/${aws:username}"))]
    assert decide(own, arn="arn:aws:s3:::b/x", context={"aws:username": "*"}).effect == (
        IMPLICIT_DENY
    )


def test_variables_are_substituted_only_in_the_resource_part_of_an_arn() -> None:
    queue = [policy(stmt(Resource="arn:aws:sqs:us-east-1:${aws:PrincipalAccount}:alerts"))]
    context = {"aws:PrincipalAccount": ACCOUNT}
    arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:alerts"
    assert decide(queue, arn=arn, context=context).effect == IMPLICIT_DENY


def test_multivalued_keys_cannot_be_variables() -> None:
    tagged = [policy(stmt(Resource="arn:aws:s3:::b/${aws:TagKeys}"))]
    assert decide(tagged, arn="arn:aws:s3:::b/a", context={"aws:TagKeys": ["a"]}).effect == (
        IMPLICIT_DENY
    )


# --- conditions ------------------------------------------------------------------------


def test_userid_variable_in_a_string_equals_condition() -> None:
    own_statements = policy(
        {
            "Effect": "Allow",
            "Action": "redshift-data:DescribeStatement",
            "Resource": "*",
            "Condition": {"StringEquals": {OWNER_KEY: "${aws:userid}"}},
        }
    )

    def describe(owner: str) -> str:
        context = {"aws:userid": "AROAEXAMPLE:run", OWNER_KEY: owner}
        action = "redshift-data:DescribeStatement"
        return decide([own_statements], (), action, "*", ETL, context).effect

    assert describe("AROAEXAMPLE:run") == ALLOW
    assert describe("AROAOTHER:run") == IMPLICIT_DENY


def test_arn_equals_on_source_arn_limits_a_service_principal_to_one_rule() -> None:
    queue_policy = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": QUEUE,
            "Condition": {"ArnEquals": {"aws:SourceArn": RULE}},
        }
    )
    events = Principal.service("events.amazonaws.com")

    def send(context: Mapping[str, ContextValue]) -> str:
        return decide([], (queue_policy,), "sqs:SendMessage", QUEUE, events, context).effect

    assert send({"aws:SourceArn": RULE}) == ALLOW
    assert send({"aws:SourceArn": RULE + "-other"}) == IMPLICIT_DENY
    assert send({}) == IMPLICIT_DENY


def test_arn_like_compares_each_of_the_six_components_separately() -> None:
    condition_pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    context = {"aws:SourceArn": value}
    assert effect_with({"ArnLike": {"aws:SourceArn": condition_pattern}}, context) == IMPLICIT_DENY
    assert effect_with({"StringLike": {"aws:SourceArn": condition_pattern}}, context) == ALLOW


def test_bool_secure_transport_false_deny_does_not_match_when_the_context_says_true() -> None:
    deny_insecure = stmt(
        "Deny", Action="s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}}
    )
    identity = [policy(stmt(), deny_insecure)]
    assert decide(identity, context={"aws:SecureTransport": True}).effect == ALLOW
    assert decide(identity, context={"aws:SecureTransport": "true"}).effect == ALLOW
    assert decide(identity, context={"aws:SecureTransport": False}).effect == EXPLICIT_DENY
    # Bool is not negated: with the key absent the Deny does not apply
    assert decide(identity).effect == ALLOW


def test_condition_on_a_key_absent_from_the_context_is_false() -> None:
    assert effect_with({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {}) == IMPLICIT_DENY
    assert effect_with({"NumericLessThan": {"s3:max-keys": "10"}}, {}) == IMPLICIT_DENY


# "If the policy condition requires that the key is not matched, such as StringNotLike or
# ArnNotLike, and the right key is not present, the condition is true" (Condition operators).
@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("StringNotEquals", "x"),
        ("StringNotEqualsIgnoreCase", "x"),
        ("StringNotLike", "x*"),
        ("NumericNotEquals", "1"),
        ("DateNotEquals", "2024-01-01T00:00:00Z"),
        ("NotIpAddress", "10.0.0.0/8"),
        ("ArnNotEquals", RULE),
        ("ArnNotLike", "arn:aws:events:*"),
    ],
)
def test_negated_operator_on_an_absent_key_is_true(operator: str, value: str) -> None:
    assert effect_with({operator: {"aws:SourceArn": value}}, {}) == ALLOW


def test_if_exists_is_true_for_an_absent_key_and_tests_a_present_one() -> None:
    condition = {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}
    assert effect_with(condition, {}) == ALLOW
    assert effect_with(condition, {"aws:SourceAccount": ACCOUNT}) == ALLOW
    assert effect_with(condition, {"aws:SourceAccount": "999999999999"}) == IMPLICIT_DENY


def test_negated_if_exists_deny_still_denies_when_the_tag_is_missing() -> None:
    deny = stmt("Deny", Condition={"StringNotEqualsIfExists": {"aws:ResourceTag/stage": "dev"}})
    assert decide([policy(stmt(), deny)]).effect == EXPLICIT_DENY
    tagged = {"aws:ResourceTag/stage": "dev"}
    assert decide([policy(stmt(), deny)], context=tagged).effect == ALLOW


def test_null_tests_whether_the_key_is_absent() -> None:
    absent = {"Null": {"aws:TokenIssueTime": "true"}}
    present = {"Null": {"aws:TokenIssueTime": False}}
    issued = {"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}
    assert effect_with(absent, {}) == ALLOW
    assert effect_with(absent, issued) == IMPLICIT_DENY
    assert effect_with(present, issued) == ALLOW
    assert effect_with(present, {}) == IMPLICIT_DENY


def test_several_values_for_one_key_are_ored() -> None:
    condition = {"StringEquals": {"aws:PrincipalTag/team": ["etl", "ops"]}}
    assert effect_with(condition, {"aws:PrincipalTag/team": "ops"}) == ALLOW
    assert effect_with(condition, {"aws:PrincipalTag/team": "web"}) == IMPLICIT_DENY


def test_several_keys_and_operators_are_anded() -> None:
    condition = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT, "aws:PrincipalTag/team": "etl"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    everything = {"aws:SourceAccount": ACCOUNT, "aws:PrincipalTag/team": "etl"}
    assert effect_with(condition, {**everything, "aws:SecureTransport": True}) == ALLOW
    assert effect_with(condition, {**everything, "aws:SecureTransport": False}) == IMPLICIT_DENY
    assert effect_with(condition, {"aws:SourceAccount": ACCOUNT, "aws:SecureTransport": True}) == (
        IMPLICIT_DENY
    )


def test_negated_operator_with_several_values_requires_matching_none_of_them() -> None:
    condition = {"StringNotEquals": {"aws:PrincipalAccount": [ACCOUNT, "999999999999"]}}
    assert effect_with(condition, {"aws:PrincipalAccount": ACCOUNT}) == IMPLICIT_DENY
    assert effect_with(condition, {"aws:PrincipalAccount": "111122223333"}) == ALLOW


def test_condition_key_names_are_case_insensitive_and_values_case_sensitive() -> None:
    condition = {"StringEquals": {"AWS:PrincipalTag/Team": "etl"}}
    assert effect_with(condition, {"aws:principaltag/team": "etl"}) == ALLOW
    assert effect_with(condition, {"aws:principaltag/team": "ETL"}) == IMPLICIT_DENY
    ignoring_case = {"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "etl"}}
    assert effect_with(ignoring_case, {"aws:PrincipalTag/team": "ETL"}) == ALLOW
    not_ignoring = {"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/team": "etl"}}
    assert effect_with(not_ignoring, {"aws:PrincipalTag/team": "ETL"}) == IMPLICIT_DENY


def test_string_like_wildcards_span_any_characters_and_string_equals_has_none() -> None:
    like = {"StringLike": {"s3:prefix": "incoming/*/2024-??.csv"}}
    assert effect_with(like, {"s3:prefix": "incoming/a:b/2024-01.csv"}) == ALLOW
    assert effect_with(like, {"s3:prefix": "incoming/a/2024-1.csv"}) == IMPLICIT_DENY
    assert effect_with({"StringNotLike": {"s3:prefix": "raw/*"}}, {"s3:prefix": "raw/x"}) == (
        IMPLICIT_DENY
    )
    equals = {"StringEquals": {"s3:prefix": "incoming/*"}}
    assert effect_with(equals, {"s3:prefix": "incoming/a"}) == IMPLICIT_DENY
    assert effect_with(equals, {"s3:prefix": "incoming/*"}) == ALLOW


@pytest.mark.parametrize(
    ("operator", "context_value", "matches"),
    [
        ("NumericEquals", 10, True),
        ("NumericEquals", "10.0", True),
        ("NumericNotEquals", 10, False),
        ("NumericLessThan", 9, True),
        ("NumericLessThan", 10, False),
        ("NumericLessThanEquals", 10, True),
        ("NumericGreaterThan", 11, True),
        ("NumericGreaterThan", 10, False),
        ("NumericGreaterThanEquals", 10, True),
        ("NumericEquals", "ten", False),
    ],
)
def test_numeric_operators(operator: str, context_value: ContextValue, matches: bool) -> None:
    expected = ALLOW if matches else IMPLICIT_DENY
    assert effect_with({operator: {"s3:max-keys": "10"}}, {"s3:max-keys": context_value}) == (
        expected
    )


@pytest.mark.parametrize(
    ("operator", "now", "matches"),
    [
        ("DateLessThan", "2024-06-30T23:59:59Z", True),
        ("DateLessThan", "2024-07-01T00:00:00Z", False),
        ("DateLessThanEquals", "2024-07-01T02:00:00+02:00", True),
        ("DateGreaterThan", 1719792001, True),
        ("DateGreaterThanEquals", "2024-07-01", True),
        ("DateEquals", "2024-07-01T00:00:00.000Z", True),
        ("DateNotEquals", "2024-07-01T00:00:00Z", False),
        ("DateEquals", "yesterday", False),
    ],
)
def test_date_operators_compare_iso_8601_and_epoch_times(
    operator: str, now: ContextValue, matches: bool
) -> None:
    condition = {operator: {"aws:CurrentTime": "2024-07-01T00:00:00Z"}}
    expected = ALLOW if matches else IMPLICIT_DENY
    assert effect_with(condition, {"aws:CurrentTime": now}) == expected


def test_binary_equals_compares_the_decoded_bytes() -> None:
    value = base64.b64encode(b"\x00flight\xff").decode()
    condition = {"BinaryEquals": {"s3:signatureversion": value}}
    assert effect_with(condition, {"s3:signatureversion": value}) == ALLOW
    other = base64.b64encode(b"other").decode()
    assert effect_with(condition, {"s3:signatureversion": other}) == IMPLICIT_DENY


@pytest.mark.parametrize(
    ("operator", "source_ip", "matches"),
    [
        ("IpAddress", "203.0.113.7", True),
        ("IpAddress", "198.51.100.1", True),
        ("IpAddress", "198.51.100.2", False),
        ("IpAddress", "2001:db8::1", True),
        ("IpAddress", "not-an-ip", False),
        ("NotIpAddress", "203.0.113.7", False),
        ("NotIpAddress", "192.0.2.1", True),
    ],
)
def test_ip_address_operators_take_cidr_ranges_and_bare_addresses(
    operator: str, source_ip: str, matches: bool
) -> None:
    ranges = ["203.0.113.0/24", "198.51.100.1", "2001:DB8::/32"]
    expected = ALLOW if matches else IMPLICIT_DENY
    assert effect_with({operator: {"aws:SourceIp": ranges}}, {"aws:SourceIp": source_ip}) == (
        expected
    )


def test_for_all_values_needs_every_context_value_in_the_policy_and_holds_when_absent() -> None:
    condition = {"ForAllValues:StringEquals": {"aws:TagKeys": ["stage", "owner"]}}
    assert effect_with(condition, {"aws:TagKeys": ["stage"]}) == ALLOW
    assert effect_with(condition, {"aws:TagKeys": ["stage", "cost"]}) == IMPLICIT_DENY
    assert effect_with(condition, {}) == ALLOW
    assert effect_with(condition, {"aws:TagKeys": []}) == ALLOW


def test_for_any_value_needs_one_matching_context_value_and_fails_when_absent() -> None:
    condition = {"ForAnyValue:StringLike": {"aws:CalledVia": "athena.*"}}
    assert effect_with(condition, {"aws:CalledVia": ["glue.x", "athena.amazonaws.com"]}) == ALLOW
    assert effect_with(condition, {"aws:CalledVia": ["glue.amazonaws.com"]}) == IMPLICIT_DENY
    assert effect_with(condition, {}) == IMPLICIT_DENY


def test_for_all_values_with_a_negated_operator_forbids_every_listed_value() -> None:
    condition = {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret", "admin"]}}
    assert effect_with(condition, {"aws:TagKeys": ["stage", "owner"]}) == ALLOW
    assert effect_with(condition, {"aws:TagKeys": ["stage", "admin"]}) == IMPLICIT_DENY


def test_missing_variable_in_a_condition_value_fails_positive_and_passes_negated_operators() -> (
    None
):
    context = {"s3:ExistingObjectTag/team": "etl"}
    equal = {"StringEquals": {"s3:ExistingObjectTag/team": "${aws:PrincipalTag/team}"}}
    not_equal = {"StringNotEquals": {"s3:ExistingObjectTag/team": "${aws:PrincipalTag/team}"}}
    assert effect_with(equal, context) == IMPLICIT_DENY
    assert effect_with(not_equal, context) == ALLOW
    tagged = {**context, "aws:PrincipalTag/team": "etl"}
    assert effect_with(equal, tagged) == ALLOW
    assert effect_with(not_equal, tagged) == IMPLICIT_DENY


def test_variables_are_not_substituted_in_numeric_conditions() -> None:
    condition = {"NumericEquals": {"s3:max-keys": "${aws:username}"}}
    with pytest.raises(PolicyError, match="not a valid operand"):
        effect_with(condition, {"s3:max-keys": 1, "aws:username": "1"})


@pytest.mark.parametrize(
    "operator",
    [
        "StringStartsWith",
        "stringequals",
        "NullIfExists",
        "ForAllValues:Null",
        "ForSomeValues:StringEquals",
        "IfExists",
    ],
)
def test_an_operator_the_evaluator_does_not_implement_raises_even_if_never_reached(
    operator: str,
) -> None:
    unreachable = stmt(Action="iam:PassRole", Condition={operator: {"aws:SourceAccount": "1"}})
    with pytest.raises(UnsupportedCondition, match="operator"):
        decide([policy(stmt(), unreachable)])


def test_supported_operators_are_the_documented_ones() -> None:
    assert set(SUPPORTED_OPERATORS) == {
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnLike",
        "ArnNotEquals",
        "ArnNotLike",
        "Null",
    }


@pytest.mark.parametrize(
    ("operator", "when_absent"),
    [
        ("StringEqualsIfExists", ALLOW),
        ("ForAnyValue:StringLike", IMPLICIT_DENY),
        ("ForAllValues:ArnLikeIfExists", ALLOW),
        ("ForAnyValue:StringLikeIfExists", ALLOW),
    ],
)
def test_if_exists_suffix_and_set_qualifiers_combine_on_an_absent_key(
    operator: str, when_absent: str
) -> None:
    assert effect_with({operator: {"aws:SourceArn": "*"}}, {}) == when_absent


def test_condition_keys_used_lists_condition_keys_and_variables_as_written() -> None:
    document = policy(
        stmt(
            Resource="arn:aws:s3:::b/${aws:username}/${*}",
            Condition={
                "StringEquals": {"aws:SourceAccount": ACCOUNT, "s3:prefix": "${aws:userid}/"},
                "Bool": {"aws:SecureTransport": "true"},
            },
        ),
        stmt("Deny", Condition={"ForAnyValue:StringLike": {"aws:TagKeys": ["x"]}}),
    )
    assert condition_keys_used(document) == {
        "aws:SourceAccount",
        "s3:prefix",
        "aws:SecureTransport",
        "aws:TagKeys",
        "aws:username",
        "aws:userid",
    }


# --- malformed policies ----------------------------------------------------------------


def test_a_single_statement_object_is_accepted_like_a_list_of_one() -> None:
    document = {"Version": "2012-10-17", "Statement": stmt()}
    assert decide([document]).effect == ALLOW


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (stmt(Effect="Permit"), "Effect must be Allow or Deny"),
        ({**stmt(), "NotAction": "s3:Put*"}, "exactly one of Action and NotAction"),
        ({"Effect": "Allow", "Resource": "*"}, "exactly one of Action and NotAction"),
        ({"Effect": "Allow", "Action": "s3:GetObject"}, "exactly one of Resource and NotResource"),
        (stmt(Principal="*"), "identity-based policy cannot name a Principal"),
        (stmt(Action=["s3:GetObject", 3]), "Action must be a string or a list of strings"),
        (stmt(Condition={"StringEquals": "x"}), "Condition must map operators"),
    ],
)
def test_malformed_identity_policies_are_rejected(statement: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        decide([policy(statement)])


def test_resource_policies_must_name_a_principal() -> None:
    with pytest.raises(PolicyError, match="exactly one of Principal and NotPrincipal"):
        decide([], (policy(stmt()),))
    with pytest.raises(PolicyError, match="Principal must be"):
        decide([], (policy(stmt(Principal={"Users": "x"})),))
