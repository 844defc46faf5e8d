"""Row rules: each rejected row keeps its line number, raw text and reason; the rest is staged."""

from __future__ import annotations

import csv
import datetime as dt
import io

from flightpipe.etl.layouts import resolve_columns
from flightpipe.etl.reader import CsvRecordReader
from flightpipe.etl.validate import BlockValidator

HEADER = b"Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
KNOWN = {11433, 13303, 14869, 12478}
# Each rule's file, also run through both engines by tests/test_engine_contract.py.
ROW_RULE_FILES = {
    "wrong-field-counts": HEADER
    + b"DL,11433,13303,-3,1\nDL,11433,13303,-3\nDL,11433,13303,-3,1,extra\n",
    "value-rules": HEADER
    + b"DL,11433,13303,-3,1\n"
    + b"DL,OKC,13303,-3,1\n"
    + b"DL,11433,13303,late,1\n"
    + b"DL,11433,13303,-3,99999\n"
    + b",11433,13303,-3,1\n"
    + b"TOOLONGCARRIER,11433,13303,-3,1\n",
    "several-rules": HEADER + b",x,13303,y,1\n",
    "dates": (
        b"FL_DATE,Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
        b"2023-01-01,DL,11433,13303,1,2\n"
        b"1/2/2023 0:00,DL,11433,13303,1,2\n"
        b"12/1/2023 12:00:00 AM,DL,11433,13303,1,2\n"
        b"someday,DL,11433,13303,1,2\n"
    ),
    "unknown-airports": HEADER
    + b"DL,11433,99999,1,2\nDL,88888,99999,1,2\nDL,11433,13303,1,2\nDL,77777,1,x,2\n",
    "quoted-fields": (
        b"Note,Carrier,OriginAirportID,DestAirportID,DepDelay,ArrDelay\n"
        b'"a, b",DL,11433,13303,1,2\n'
        b'"two\nlines",DL,11433,13303,bad,2\n'
        b'plain,"UA",14869,12478,3,4\n'
    ),
    "nul-and-bad-utf8": HEADER
    + b"DL,11433,13303,1,2\n" * 4000  # past the first 64 KiB, which decides "not text"
    + b"D\x00,11433,13303,1,2\nD\xff,11433,13303,1,2\n",
    "bare-carriage-return": HEADER
    + b"DL,11433,13303,1,2\nDL,11433,13303,1,2\r9\nUA,14869,12478,3,4\n",
}


def validate(data: bytes, key_date=None, block_bytes: int = 1 << 20):
    reader = CsvRecordReader(io.BytesIO(data), block_bytes)
    _, header = reader.header()
    columns = resolve_columns(next(csv.reader([header.decode()])))
    validator = BlockValidator(columns, KNOWN, key_date)
    staged, rejects, counts = [], [], {"read": 0, "valid": 0, "unmatched": 0}
    unknown: set[int] = set()
    for block in reader.data_blocks():
        result = validator.validate(block)
        staged += result.staged_bytes.decode("utf-8").splitlines()
        rejects += [(r.line, r.raw, r.reason) for r in result.rejects]
        counts["read"] += result.rows_read
        counts["valid"] += result.rows_valid
        counts["unmatched"] += result.unmatched_airport_rows
        unknown |= result.unknown_airport_ids
    return staged, rejects, counts, unknown


def test_valid_rows_are_staged_in_warehouse_column_order_with_nulls_empty():
    staged, rejects, counts, _ = validate(HEADER + b"DL,11433,13303,-3.00,\n AA ,14869,12478,,7\n")
    assert staged == ["DL,11433,13303,-3,,", "AA,14869,12478,,7,"]
    assert rejects == [] and counts["read"] == counts["valid"] == 2


def test_wrong_number_of_fields_rejects_the_row_with_line_and_raw_text():
    staged, rejects, counts, _ = validate(ROW_RULE_FILES["wrong-field-counts"])
    assert len(staged) == 1
    assert rejects == [
        (3, b"DL,11433,13303,-3", "wrong number of fields: expected 5, found 4"),
        (4, b"DL,11433,13303,-3,1,extra", "wrong number of fields: expected 5, found 6"),
    ]
    assert counts["read"] == 3


def test_each_value_rule_rejects_only_its_row_and_says_why():
    staged, rejects, _, _ = validate(ROW_RULE_FILES["value-rules"])
    assert staged == ["DL,11433,13303,-3,1,"]
    reasons = {line: reason for line, _, reason in rejects}
    assert reasons[3] == "dep_airport_id 'OKC' is not an integer airport id"
    assert reasons[4] == "dep_delay 'late' is not a whole number of minutes"
    assert reasons[5] == "arr_delay 99999 is outside the sane bound of ±4000 minutes"
    assert reasons[6] == "carrier is empty"
    assert "more than the 8 bytes of the warehouse column" in reasons[7]


def test_a_row_breaking_several_rules_lists_every_reason():
    _, rejects, _, _ = validate(ROW_RULE_FILES["several-rules"])
    assert rejects[0][2] == (
        "carrier is empty; dep_airport_id 'x' is not an integer airport id; "
        "dep_delay 'y' is not a whole number of minutes"
    )


def test_unparseable_dates_reject_the_row_and_formats_mix_freely():
    staged, rejects, _, _ = validate(ROW_RULE_FILES["dates"])
    assert [row.rsplit(",", 1)[1] for row in staged] == ["2023-01-01", "2023-01-02", "2023-12-01"]
    assert rejects == [
        (5, b"someday,DL,11433,13303,1,2", "flight date 'someday' is not in a recognised format")
    ]


def test_without_a_date_column_the_key_date_is_staged():
    staged, _, _, _ = validate(HEADER + b"DL,11433,13303,1,2\n", key_date=dt.date(2023, 1, 9))
    assert staged == ["DL,11433,13303,1,2,2023-01-09"]


def test_unknown_airports_load_and_are_counted_once_per_row():
    staged, rejects, counts, unknown = validate(ROW_RULE_FILES["unknown-airports"])
    assert len(staged) == 3 and len(rejects) == 1
    assert counts["unmatched"] == 2
    assert unknown == {88888, 99999}  # 77777 and 1 are on a rejected row


def test_quoted_fields_with_commas_and_newlines_parse_and_rejects_keep_the_whole_record():
    staged, rejects, _, _ = validate(ROW_RULE_FILES["quoted-fields"])
    assert staged == ["DL,11433,13303,1,2,", "UA,14869,12478,3,4,"]
    assert rejects == [
        (
            3,
            b'"two\nlines",DL,11433,13303,bad,2',
            "dep_delay 'bad' is not a whole number of minutes",
        )
    ]


def test_nul_bytes_and_invalid_utf8_past_the_sniffed_start_reject_only_those_rows():
    staged, rejects, _, _ = validate(ROW_RULE_FILES["nul-and-bad-utf8"])
    assert len(staged) == 4000
    assert [(line, reason) for line, _, reason in rejects] == [
        (4002, "the row contains a NUL byte"),
        (4003, "the row is not valid UTF-8 text"),
    ]


def test_a_bare_carriage_return_is_rejected_as_malformed_and_the_block_still_loads():
    staged, rejects, counts, _ = validate(ROW_RULE_FILES["bare-carriage-return"])
    assert staged == ["DL,11433,13303,1,2,", "UA,14869,12478,3,4,"]
    assert rejects[0][0] == 3 and rejects[0][2].startswith("malformed CSV quoting")
    assert counts["read"] == 3


def test_results_do_not_depend_on_the_block_size():
    rows = b"".join(b"DL,11433,13303,%d,%d\n" % (i, -i) for i in range(300))
    data = HEADER + rows + b"DL,bad,13303,1,2\n" + rows
    assert validate(data, block_bytes=97) == validate(data)
