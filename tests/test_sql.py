"""SQL files are split and rendered without letting values change a statement."""

from __future__ import annotations

import datetime as dt

import pytest

from flightpipe.sql import quote_literal, render_statements, split_statements


def test_statements_split_at_line_ending_semicolons_and_comments_are_dropped():
    text = "-- header\nSELECT 1;\n\n-- only a comment;\nSELECT 'a;b'\nFROM t; -- trailing\n"
    assert split_statements(text) == ["SELECT 1", "SELECT 'a;b'\nFROM t"]


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (None, "NULL"),
        (True, "TRUE"),
        (42, "42"),
        ("O'Hare", "'O''Hare'"),
        ("a\\b", "'a\\\\b'"),
        (dt.date(2023, 1, 2), "'2023-01-02'"),
        (dt.datetime(2023, 1, 2, 3, 4, 5), "'2023-01-02 03:04:05'"),
    ],
)
def test_values_become_quoted_literals(value, literal):
    assert quote_literal(value) == literal


def test_nul_characters_are_refused():
    with pytest.raises(ValueError, match="NUL"):
        quote_literal("a\x00b")


def test_rendered_values_cannot_break_out_of_their_literal():
    statements = render_statements(
        "load_airports.sql",
        manifest_uri="s3://b/staging/manifests/x'; DROP TABLE airlines.airports_dim; --.manifest",
        source_uri="s3://b/dimensions/x'; DROP TABLE airlines.airports_dim; --.csv",
        source_version="v1",
        iam_role="arn:aws:iam::1:role/r",
    )
    assert len(statements) == 5
    assert (
        "FROM 's3://b/staging/manifests/x''; DROP TABLE airlines.airports_dim; --.manifest'"
        in statements[2]
    )
    assert "'s3://b/dimensions/x''; DROP TABLE airlines.airports_dim; --.csv'" in statements[4]
