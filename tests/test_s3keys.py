"""An S3 event's key names the object as given, else URL-decoded — and never any other object."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from moto import mock_aws

from flightpipe.s3keys import SourceObjectNotFound, candidate_keys, resolve_event_key

BUCKET = "flightpipe-keys-test"
# Spaces, a plus, a percent sign that is not an escape, parentheses, unicode.
AWKWARD = "incoming/my flights+1 (copy) 50% ✈ Zürich.csv"


def classic_encoding(key: str) -> str:
    """How S3's classic notifications encode a key: form style, ``/`` kept."""
    return quote_plus(key, safe="/")


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def versioned(s3: Any) -> Any:
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return s3


def put(s3: Any, key: str, body: bytes = b"a,b\n1,2\n") -> dict:
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def test_the_encoding_under_test_is_the_one_aws_documents() -> None:
    assert classic_encoding("red flower.jpg") == "red+flower.jpg"
    assert classic_encoding("incoming/a+b c.csv") == "incoming/a%2Bb+c.csv"
    encoded = classic_encoding(AWKWARD)
    assert " " not in encoded and "✈" not in encoded and encoded.startswith("incoming/")


def test_a_literal_event_key_names_its_object(s3: Any) -> None:
    put(s3, AWKWARD)
    resolved = resolve_event_key(s3, BUCKET, AWKWARD)
    assert resolved.key == AWKWARD and not resolved.decoded


def test_an_encoded_event_key_names_the_decoded_object(s3: Any) -> None:
    put(s3, AWKWARD)
    encoded = classic_encoding(AWKWARD)
    resolved = resolve_event_key(s3, BUCKET, encoded)
    assert resolved.key == AWKWARD
    assert resolved.event_key == encoded and resolved.decoded


@pytest.mark.parametrize(
    "event_key, expected",
    [
        ("incoming/a+b.csv", "incoming/a+b.csv"),  # exists as given: the literal wins
        ("incoming/a b.csv", "incoming/a b.csv"),
        ("incoming/a%2Bb.csv", "incoming/a+b.csv"),  # encoded '+' decodes to the plus file
    ],
)
def test_when_both_a_plus_and_a_space_file_exist_the_key_as_given_wins(
    s3: Any, event_key: str, expected: str
) -> None:
    put(s3, "incoming/a+b.csv", b"plus")
    put(s3, "incoming/a b.csv", b"space")
    assert resolve_event_key(s3, BUCKET, event_key).key == expected


def test_a_literal_key_that_looks_encoded_is_not_decoded(s3: Any) -> None:
    put(s3, "incoming/100%25 done.csv")
    put(s3, "incoming/100% done.csv")
    assert resolve_event_key(s3, BUCKET, "incoming/100%25 done.csv").key == (
        "incoming/100%25 done.csv"
    )


def test_when_neither_key_exists_the_error_names_both(s3: Any) -> None:
    put(s3, "incoming/unrelated.csv")
    encoded = classic_encoding(AWKWARD)
    with pytest.raises(SourceObjectNotFound) as raised:
        resolve_event_key(s3, BUCKET, encoded)
    assert raised.value.tried == [encoded, AWKWARD]
    message = str(raised.value)
    assert f"s3://{BUCKET}/{encoded}" in message and f"s3://{BUCKET}/{AWKWARD}" in message


def test_a_key_with_nothing_to_decode_is_tried_once(s3: Any) -> None:
    assert candidate_keys("incoming/plain.csv") == ["incoming/plain.csv"]
    with pytest.raises(SourceObjectNotFound) as raised:
        resolve_event_key(s3, BUCKET, "incoming/plain.csv")
    assert raised.value.tried == ["incoming/plain.csv"]
    assert "incoming/plain.csv" in str(raised.value)


def test_with_a_version_id_the_decoded_key_must_have_that_version(versioned: Any) -> None:
    s3 = versioned
    space = put(s3, "incoming/a b.csv", b"space v1")["VersionId"]
    put(s3, "incoming/a b.csv", b"space v2")
    plus = put(s3, "incoming/a+b.csv", b"plus")["VersionId"]
    # The version belongs to the space file: the literal plus file is not it.
    resolved = resolve_event_key(s3, BUCKET, "incoming/a+b.csv", space)
    assert resolved.key == "incoming/a b.csv"
    body = s3.get_object(Bucket=BUCKET, Key=resolved.key, VersionId=space)["Body"].read()
    assert body == b"space v1"
    # The plus file's own version resolves to it as given.
    assert resolve_event_key(s3, BUCKET, "incoming/a+b.csv", plus).key == "incoming/a+b.csv"


def test_a_version_id_of_another_object_resolves_to_nothing(versioned: Any) -> None:
    s3 = versioned
    put(s3, AWKWARD)
    other = put(s3, "incoming/other.csv")["VersionId"]
    with pytest.raises(SourceObjectNotFound) as raised:
        resolve_event_key(s3, BUCKET, classic_encoding(AWKWARD), other)
    assert raised.value.version_id == other
    assert f"at version {other}" in str(raised.value)
