"""Header layouts: both real layouts load; missing columns and missing headers reject the file."""

from __future__ import annotations

import pytest

from flightpipe.etl.errors import FileRejected
from flightpipe.etl.layouts import FIELD_ALIASES, resolve_columns

TUTORIAL = ["Carrier", "OriginAirportID", "DestAirportID", "DepDelay", "ArrDelay"]


def test_tutorial_layout_maps_every_field_without_a_date():
    columns = resolve_columns(TUTORIAL)
    assert columns.positions == {
        "carrier": 0,
        "dep_airport_id": 1,
        "arr_airport_id": 2,
        "dep_delay": 3,
        "arr_delay": 4,
    }
    assert columns.layout == "tutorial" and not columns.has_date


def test_bts_layout_ignores_extra_columns_and_finds_the_date():
    header = ["YEAR", "FL_DATE", "OP_UNIQUE_CARRIER", "OP_CARRIER", "TAIL_NUM"]
    header += ["ORIGIN_AIRPORT_ID", "ORIGIN", "DEST_AIRPORT_ID", "DEP_DELAY", "ARR_DELAY", ""]
    columns = resolve_columns(header)
    assert columns.positions["carrier"] == 2  # OP_UNIQUE_CARRIER is preferred to OP_CARRIER
    assert columns.positions["flight_date"] == 1
    assert columns.field_count == 11 and columns.layout == "bts"


@pytest.mark.parametrize("carrier", ["OP_CARRIER", "MKT_UNIQUE_CARRIER"])
def test_other_bts_carrier_columns_are_accepted(carrier):
    header = [carrier, "ORIGIN_AIRPORT_ID", "DEST_AIRPORT_ID", "DEP_DELAY", "ARR_DELAY"]
    assert resolve_columns(header).positions["carrier"] == 0


def test_names_match_case_insensitively_ignoring_spaces_in_any_order():
    header = [
        " arrdelay",
        "DESTAIRPORTID ",
        "carrier",
        " depDelay ",
        "originairportid",
        "flightdate",
    ]
    columns = resolve_columns(header)
    assert columns.positions == {
        "carrier": 2,
        "dep_airport_id": 4,
        "arr_airport_id": 1,
        "dep_delay": 3,
        "arr_delay": 0,
        "flight_date": 5,
    }


def test_missing_columns_reject_the_file_naming_each_one_and_its_accepted_names():
    with pytest.raises(FileRejected) as rejected:
        resolve_columns(["Carrier", "OriginAirportID", "DepDelay", "Comment"])
    message = rejected.value.reason
    assert "arr_airport_id (accepted names: DestAirportID, DEST_AIRPORT_ID)" in message
    assert "arr_delay (accepted names: ArrDelay, ARR_DELAY)" in message
    assert "carrier" not in message.split("The header has")[0].split("required columns missing")[1]
    assert "The header has: Carrier, OriginAirportID, DepDelay, Comment" in message


def test_a_header_of_unknown_names_lists_every_required_field():
    with pytest.raises(FileRejected) as rejected:
        resolve_columns(["a", "b", "c"])
    for field in ("carrier", "dep_airport_id", "arr_airport_id", "dep_delay", "arr_delay"):
        assert (
            f"{field} (accepted names: {', '.join(FIELD_ALIASES[field])})" in rejected.value.reason
        )


def test_a_first_line_of_data_is_reported_as_a_missing_header():
    with pytest.raises(FileRejected, match=r"no header row.*DL,11433,13303,-3,1"):
        resolve_columns(["DL", "11433", "13303", "-3", "1"])
