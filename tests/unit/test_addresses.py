"""Civic address normalisation (USPS Publication 28), parsing and the two address point file formats."""

from __future__ import annotations

import json

import pytest

from services.intake import addresses
from services.intake.addresses import AddressFileError, Street


@pytest.mark.parametrize(
    ("word", "abbr"),
    [
        ("Avenue", "AVE"),
        ("av", "AVE"),
        ("AVNUE", "AVE"),
        ("Boulevard", "BLVD"),
        ("Street", "ST"),
        ("str", "ST"),
        ("Crossing", "XING"),
        ("Parkways", "PKWY"),
        ("Ct.", "CT"),
        ("highway", "HWY"),
        ("TRL", "TRL"),
    ],
)
def test_suffixes_become_their_standard_abbreviation(word: str, abbr: str) -> None:
    assert addresses.suffix(word) == abbr


@pytest.mark.parametrize(
    ("word", "abbr"), [("North", "N"), ("n", "N"), ("Southwest", "SW"), ("SW", "SW"), ("north east", "NE")]
)
def test_directionals_become_their_abbreviation(word: str, abbr: str) -> None:
    assert addresses.directional(word) == abbr


def test_abbreviations_are_spelled_out_the_other_way() -> None:
    assert addresses.expand_suffix("AVE") == "AVENUE"
    assert addresses.expand_suffix("XING") == "CROSSING"
    assert addresses.expand_directional("NW") == "NORTHWEST"
    assert addresses.street("Main", "N", "St", "").spelled_out() == "NORTH MAIN STREET"


def test_every_suffix_spelling_reads_back_to_its_primary_name() -> None:
    for word, abbr in addresses.SUFFIX_ABBR.items():
        assert addresses.suffix(addresses.expand_suffix(abbr)) == abbr, word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("North Main Street", Street("MAIN", predir="N", type="ST")),
        ("N. Main St.", Street("MAIN", predir="N", type="ST")),
        ("Main St N", Street("MAIN", type="ST", posdir="N")),
        ("North Street", Street("NORTH", type="ST")),
        ("E North St", Street("NORTH", predir="E", type="ST")),
        ("West", Street("WEST")),
        ("First Avenue", Street("1ST", type="AVE")),
        ("Martin Luther King Jr Blvd", Street("MARTIN LUTHER KING JR", type="BLVD")),
    ],
)
def test_a_street_written_as_one_string_is_split_into_its_parts(text: str, expected: Street) -> None:
    assert addresses.street_from_text(text) == expected


def test_a_gis_street_and_a_cad_street_have_one_key() -> None:
    gis = addresses.street("Main", "North", "Street", "")
    cad = addresses.street_from_text("N MAIN ST")
    assert gis.key == cad.key == "N MAIN ST"


@pytest.mark.parametrize(
    ("text", "number", "suffix"),
    [("123", 123, ""), ("123A", 123, "A"), ("123-B", 123, "B"), ("12 1/2", 12, "1/2"), ("Rear", None, "")],
)
def test_house_numbers(text: str, number: int | None, suffix: str) -> None:
    assert addresses.house_number(text) == (number, suffix)


def test_a_one_line_address_with_commas() -> None:
    civic = addresses.civic_from_text("123 N Main St Apt 4, Springfield, OR 97477")
    assert civic is not None
    assert (civic.number, civic.street.key, civic.unit) == (123, "N MAIN ST", "APT 4")
    assert (civic.municipality, civic.state, civic.postcode) == ("SPRINGFIELD", "OR", "97477")


def test_a_one_line_address_without_commas() -> None:
    civic = addresses.civic_from_text("123 N Main St # 5 Springfield OR 97477 USA")
    assert civic is not None
    assert (civic.number, civic.street.key, civic.unit) == (123, "N MAIN ST", "# 5")
    assert (civic.municipality, civic.state, civic.postcode) == ("SPRINGFIELD", "OR", "97477")


def test_an_address_without_a_number_or_street_is_none() -> None:
    assert addresses.civic_from_text("Springfield, OR") is None
    assert addresses.civic_from_text("") is None


def test_a_pidf_civic_address() -> None:
    civic = addresses.civic_from_pidf(
        {"HNO": "100", "HNS": "A", "PRD": "W", "RD": "10th", "STS": "Avenue", "A3": "City of Eugene"}
        | {"A1": "OR", "PC": "97401", "UNIT": "3"}
    )
    assert civic is not None
    assert (civic.number, civic.number_suffix, civic.street.key) == (100, "A", "W 10TH AVE")
    assert (civic.municipality, civic.unit, civic.postcode) == ("EUGENE", "3", "97401")


def test_a_pidf_road_holding_the_whole_street_is_split() -> None:
    civic = addresses.civic_from_pidf({"HNO": "9", "RD": "North Oak Street", "A3": "Eugene"})
    assert civic is not None and civic.street.key == "N OAK ST"


def test_a_civic_address_survives_its_stored_form() -> None:
    civic = addresses.civic_from_text("12 1/2 SW Oak Ave Unit 2, Eugene, OR")
    assert civic is not None
    assert addresses.CivicAddress.from_json(json.loads(json.dumps(civic.as_json()))) == civic


def _feature(**props: object) -> dict[str, object]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [-123.0889, 44.0503]},
        "properties": props,
    }


NENA = {
    "Site_NGUID": "urn:emergency:uid:gis:ssap:1:lane.or.us",
    "Add_Number": 125,
    "AddNum_Suf": "",
    "St_PreDir": "North",
    "St_Name": "Main",
    "St_PosTyp": "Street",
    "St_PosDir": "",
    "Unit": "",
    "Inc_Muni": "Springfield",
    "Post_Comm": "Springfield",
    "State": "OR",
    "Post_Code": "97477",
}


def test_nena_geojson_points() -> None:
    text = json.dumps({"type": "FeatureCollection", "features": [_feature(**NENA)]})
    [point] = addresses.read_points("points.geojson", text)
    assert (point.number, point.street.key, point.municipality) == (125, "N MAIN ST", "SPRINGFIELD")
    assert (point.lat, point.lon, point.postcode, point.state) == (44.0503, -123.0889, "97477", "OR")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"St_Name": ""}, "feature 1 (urn:emergency:uid:gis:ssap:1:lane.or.us): St_Name is empty"),
        ({"Add_Number": "one"}, "feature 1 (urn:emergency:uid:gis:ssap:1:lane.or.us): Add_Number 'one'"),
    ],
)
def test_a_bad_nena_feature_is_named(change: dict[str, object], message: str) -> None:
    text = json.dumps(
        {"type": "FeatureCollection", "features": [_feature(**NENA), _feature(**NENA | change)]}
    )
    with pytest.raises(AddressFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        addresses.read_points("points.geojson", text)


def test_a_nena_feature_off_the_earth_is_refused() -> None:
    bad = _feature(**NENA) | {"geometry": {"type": "Point", "coordinates": [44.05, -123.08]}}
    with pytest.raises(AddressFileError, match=r"feature 0 .* not on the Earth"):
        addresses.read_points("x.geojson", json.dumps({"type": "FeatureCollection", "features": [bad]}))


def test_a_file_that_is_not_geojson_is_refused() -> None:
    with pytest.raises(AddressFileError, match="not JSON: line 1"):
        addresses.read_points("x.geojson", "{nope")
    with pytest.raises(AddressFileError, match="not a GeoJSON FeatureCollection"):
        addresses.read_points("x.geojson", "[]")


OA_HEADER = "LON,LAT,NUMBER,STREET,UNIT,CITY,DISTRICT,REGION,POSTCODE,ID,HASH\n"


def test_openaddresses_csv_points() -> None:
    text = OA_HEADER + "-123.0889,44.0503,125,N Main St,,Springfield,Lane,OR,97477,,abc\n"
    text += "-123.0890,44.0504,,N Main St,,Springfield,Lane,OR,97477,,abd\n"  # no number: skipped
    [point] = addresses.read_points("or_lane.csv", text)
    assert (point.number, point.street.key, point.municipality, point.state) == (
        125,
        "N MAIN ST",
        "SPRINGFIELD",
        "OR",
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-123.08,44.05,12X3,Main St,,Eugene,,OR,,,", "line 3: NUMBER '12X3'"),
        ("-123.08,,12,Main St,,Eugene,,OR,,,", "line 3: the position is not a number"),
        ("-123.08,44.05,12,Main St,,Eugene", "line 3: 6 fields where the header has 11"),
        ("-123.08,44.05,12,,,Eugene,,OR,,,", "line 3: STREET is empty"),
    ],
)
def test_a_bad_openaddresses_line_is_named(line: str, message: str) -> None:
    text = OA_HEADER + "-123.08,44.05,10,Main St,,Eugene,,OR,,,\n" + line + "\n"
    with pytest.raises(AddressFileError, match=message):
        addresses.read_points("x.csv", text)


def test_an_openaddresses_header_without_the_columns_is_refused() -> None:
    with pytest.raises(AddressFileError, match="line 1: the header lacks LAT, NUMBER"):
        addresses.read_points("x.csv", "LON,STREET\n1,Main\n")


def test_a_file_with_no_usable_point_is_refused() -> None:
    with pytest.raises(AddressFileError, match="no address point"):
        addresses.read_points("x.csv", OA_HEADER)


def _oa_line(number: object, street: str = "N Main St", lon: float = -123.0889) -> str:
    props = {"hash": "x", "number": number, "street": street, "unit": "", "city": "Springfield"}
    props |= {"district": "Lane", "region": "OR", "postcode": "97477", "id": ""}
    geometry = {"type": "Point", "coordinates": [lon, 44.0503]}
    return json.dumps({"type": "Feature", "properties": props, "geometry": geometry})


def test_openaddresses_geojson_lines() -> None:
    text = "\n".join([_oa_line("125"), _oa_line(""), _oa_line("127A")]) + "\n"
    assert (
        addresses.detect_format("or_lane-addresses-county.geojson", text[:1024]) == "openaddresses-geojsonl"
    )
    points = addresses.read_points("or_lane-addresses-county.geojson", text)
    assert [(p.number, p.number_suffix, p.street.key, p.municipality) for p in points] == [
        (125, "", "N MAIN ST", "SPRINGFIELD"),
        (127, "A", "N MAIN ST", "SPRINGFIELD"),
    ]


def test_a_bad_openaddresses_geojson_line_is_named() -> None:
    text = "\n".join([_oa_line("125"), _oa_line("125", lon=-200.0)])
    with pytest.raises(AddressFileError, match="line 2: the position"):
        addresses.read_points("x.geojsonl", text)
    with pytest.raises(AddressFileError, match="line 2: not JSON"):
        addresses.read_points("x.geojsonl", _oa_line("1") + "\n{nope")


def test_the_format_is_told_by_name_then_content() -> None:
    assert addresses.detect_format("a.geojson", "") == "nena-geojson"
    assert (
        addresses.detect_format("a.geojson", '{"type": "FeatureCollection", "features": [\n')
        == "nena-geojson"
    )
    assert addresses.detect_format("a.csv", "") == "openaddresses-csv"
    assert addresses.detect_format("export", ' {"type"') == "nena-geojson"
    assert addresses.detect_format("export", "LON,LAT,NUMBER") == "openaddresses-csv"
    with pytest.raises(AddressFileError, match="unknown format"):
        addresses.file_format("shapefile")
