"""The embedded PostgreSQL stand-in runs the project's Redshift SQL as Redshift would."""

from __future__ import annotations

import gzip
import json

import pytest

from flightpipe.sql import quote_literal, read_sql, render_statements, split_statements
from flightpipe_local.redshift_standin import (
    StandInSqlError,
    parse_copy_from_s3,
    strip_table_attributes,
)

pytestmark = pytest.mark.warehouse


def test_redshift_table_attributes_are_stripped_from_create_table_only():
    ddl = (
        "CREATE TABLE IF NOT EXISTS t (a BIGINT ENCODE az64, b INT DISTKEY)\n"
        "DISTSTYLE ALL\nCOMPOUND SORTKEY (a, b)"
    )
    assert strip_table_attributes(ddl).split() == [
        "CREATE", "TABLE", "IF", "NOT", "EXISTS", "t", "(a", "BIGINT", ",", "b", "INT", ")",
    ]  # fmt: skip
    select = "SELECT 'DISTSTYLE ALL' AS x"
    assert strip_table_attributes(select) == select


def test_copy_from_s3_is_parsed_with_its_options():
    copy = parse_copy_from_s3(
        "COPY stage (a, b) FROM 's3://bucket/staging/it''s \\\\ key.csv.gz'\n"
        "IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS CSV GZIP IGNOREHEADER 1"
    )
    assert copy is not None
    assert (copy.table, copy.columns, copy.bucket) == ("stage", "a, b", "bucket")
    assert copy.prefix == "staging/it's \\ key.csv.gz"
    assert (copy.gzip, copy.csv, copy.ignore_header) == (True, True, 1)
    assert parse_copy_from_s3("SELECT 1") is None


def test_unsupported_copy_option_is_a_clear_error():
    with pytest.raises(StandInSqlError, match="not supported locally"):
        parse_copy_from_s3("COPY t FROM 's3://b/k' ENCRYPTED")


def _schema_snapshot(redshift_standin) -> dict:
    """The airlines schema as the catalog sees it (table identities included), and its rows."""
    tables = redshift_standin.query(
        "SELECT c.relname, c.oid::text AS oid FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'airlines' ORDER BY c.relname"
    ).rows
    columns = redshift_standin.query(
        "SELECT table_name, ordinal_position, column_name, data_type, "
        "character_maximum_length, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'airlines' ORDER BY table_name, ordinal_position"
    ).rows
    constraints = redshift_standin.query(
        "SELECT table_name, constraint_type, constraint_name FROM information_schema."
        "table_constraints WHERE table_schema = 'airlines' ORDER BY table_name, constraint_name"
    ).rows
    rows = redshift_standin.query(
        "SELECT airport_id, name FROM airlines.airports_dim ORDER BY airport_id"
    ).rows
    return {"tables": tables, "columns": columns, "constraints": constraints, "rows": rows}


def test_schema_ddl_applied_twice_fails_nothing_and_changes_nothing(warehouse, redshift_standin):
    schema = split_statements(read_sql("schema.sql"))
    redshift_standin.execute_batch(schema)  # the warehouse fixture applied it already
    redshift_standin.execute_batch(
        ["INSERT INTO airlines.airports_dim (airport_id, name) VALUES (1, 'Kept Airport')"]
    )
    before = _schema_snapshot(redshift_standin)
    assert ("airports_dim",) in {(name,) for name, _ in before["tables"]}
    redshift_standin.execute_batch(schema)
    assert _schema_snapshot(redshift_standin) == before
    assert before["rows"] == [(1, "Kept Airport")]


def test_airports_load_from_s3_through_the_manifest(warehouse, object_store, shared_data):
    object_store.put_object(
        Bucket="data",
        Key="dimensions/airports.csv",
        Body=(shared_data / "airports.csv").read_bytes(),
    )
    object_store.put_object(
        Bucket="data",
        Key="m/airports.manifest",
        Body=_manifest("s3://data/dimensions/airports.csv"),
    )
    warehouse.execute_batch(
        render_statements(
            "load_airports.sql",
            manifest_uri="s3://data/m/airports.manifest",
            source_uri="s3://data/dimensions/airports.csv",
            source_version="etag-1",
            iam_role="arn:aws:iam::123456789012:role/copy",
        )
    )
    rows = warehouse.query(read_sql("airports_loaded_version.sql"))
    assert rows == [{"source_version": "etag-1", "row_count": 365}]
    ohare = warehouse.query("SELECT name FROM airlines.airports_dim WHERE airport_id = 13930")
    assert ohare == [{"name": "Chicago O'Hare International"}]


def test_gzip_copy_from_a_prefix_loads_every_object_under_it(redshift_standin, object_store):
    for part in ("a", "b"):
        object_store.put_object(
            Bucket="data", Key=f"parts/{part}.csv.gz", Body=gzip.compress(b"h\n1\n2\n")
        )
    redshift_standin.query("CREATE TABLE IF NOT EXISTS public.numbers (n INT)")
    redshift_standin.execute_batch(
        [
            "TRUNCATE public.numbers",
            "COPY public.numbers FROM 's3://data/parts/' IAM_ROLE DEFAULT CSV GZIP IGNOREHEADER 1",
        ]
    )
    assert redshift_standin.query("SELECT SUM(n) FROM public.numbers").rows == [(6,)]


def _manifest(*urls: str, mandatory: bool = True) -> bytes:
    entries = [{"url": url, "mandatory": mandatory} for url in urls]
    return json.dumps({"entries": entries}).encode()


def test_copy_from_is_a_key_prefix_and_a_manifest_loads_exactly_its_entries(
    redshift_standin, object_store
):
    object_store.put_object(Bucket="data", Key="dims/x.csv", Body=b"1\n2\n")
    object_store.put_object(Bucket="data", Key="dims/x.csv.bak", Body=b"100\n")
    object_store.put_object(
        Bucket="data", Key="m/x.manifest", Body=_manifest("s3://data/dims/x.csv")
    )
    redshift_standin.query("CREATE TABLE IF NOT EXISTS public.prefixed (n INT)")
    load = "COPY public.prefixed FROM 's3://data/{}' IAM_ROLE DEFAULT CSV{}"
    sums = []
    for source, option in (("dims/x.csv", ""), ("m/x.manifest", " MANIFEST")):
        results = redshift_standin.execute_batch(
            [
                "TRUNCATE public.prefixed",
                load.format(source, option),
                "SELECT SUM(n) FROM public.prefixed",
            ]
        )
        sums.append(results[2].rows[0][0])
    assert sums == [103, 3]


def test_a_mandatory_manifest_entry_that_is_missing_fails_the_copy(redshift_standin, object_store):
    object_store.put_object(
        Bucket="data", Key="m/gone.manifest", Body=_manifest("s3://data/dims/gone.csv")
    )
    redshift_standin.query("CREATE TABLE IF NOT EXISTS public.prefixed (n INT)")
    with pytest.raises(StandInSqlError, match="mandatory"):
        redshift_standin.query(
            "COPY public.prefixed FROM 's3://data/m/gone.manifest' IAM_ROLE DEFAULT CSV MANIFEST"
        )


def test_redshift_role_grants_and_svv_roles_work(redshift_standin):
    exists = "SELECT COUNT(*) FROM svv_roles WHERE role_name = 'standin_test_role'"
    if not redshift_standin.query(exists).rows[0][0]:
        redshift_standin.query("CREATE ROLE standin_test_role")
    redshift_standin.query("CREATE TABLE IF NOT EXISTS public.granted (n INT)")
    redshift_standin.query("GRANT SELECT ON TABLE public.granted TO ROLE standin_test_role")
    assert redshift_standin.query(exists).rows == [(1,)]
    assert redshift_standin.query(
        "SELECT COUNT(*) FROM public.granted", role="standin_test_role"
    ).rows == [(0,)]


def test_failed_batch_rolls_back_every_statement(redshift_standin):
    redshift_standin.query("CREATE TABLE IF NOT EXISTS public.kept (n INT)")
    redshift_standin.execute_batch(["TRUNCATE public.kept", "INSERT INTO public.kept VALUES (1)"])
    with pytest.raises(StandInSqlError) as failure:
        redshift_standin.execute_batch(["DELETE FROM public.kept", "SELECT 1 / 0"])
    assert failure.value.statement_index == 1
    assert redshift_standin.query("SELECT n FROM public.kept").rows == [(1,)]


def test_string_literals_round_trip_quotes_backslashes_and_non_ascii(redshift_standin):
    value = "incoming/O'Hare \\ daté ; 1.csv"
    result = redshift_standin.query(f"SELECT {quote_literal(value)} AS v, GETDATE() AS t")
    assert result.rows[0][0] == value
    assert result.column_types == ["text", "timestamp"]


def test_temporary_table_lives_only_inside_its_batch(redshift_standin):
    redshift_standin.execute_batch(
        ["CREATE TEMP TABLE scratch (n INT)", "INSERT INTO scratch VALUES (1)"]
    )
    with pytest.raises(StandInSqlError, match="scratch"):
        redshift_standin.query("SELECT * FROM scratch")
