"""Civic addresses, no I/O: USPS Publication 28 normalisation, a call's address parsed, and the
two address point file formats (NENA NG911 GIS GeoJSON, OpenAddresses CSV) read."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.domain_errors import DomainError

# Publication 28 appendix B: directionals, and their one- or two-letter abbreviations.
_DIRECTIONALS = {
    "N": "NORTH",
    "S": "SOUTH",
    "E": "EAST",
    "W": "WEST",
    "NE": "NORTHEAST",
    "NW": "NORTHWEST",
    "SE": "SOUTHEAST",
    "SW": "SOUTHWEST",
}
# Publication 28 appendix C1: each standard suffix abbreviation, its primary name, then the
# commonly used spellings the Postal Service reads as it.
_SUFFIXES = """
ALY ALLEY ALLEE ALLY|ANX ANNEX ANEX ANNX|ARC ARCADE|AVE AVENUE AV AVEN AVENU AVN AVNUE|BYU BAYOU BAYOO
BCH BEACH|BND BEND|BLF BLUFF BLUF|BLFS BLUFFS|BTM BOTTOM BOT BOTTM|BLVD BOULEVARD BOUL BOULV
BR BRANCH BRNCH|BRG BRIDGE BRDGE|BRK BROOK|BRKS BROOKS|BG BURG|BGS BURGS|BYP BYPASS BYPA BYPAS BYPS
CP CAMP CMP|CYN CANYON CANYN CNYN|CPE CAPE|CSWY CAUSEWAY CAUSWA|CTR CENTER CEN CENT CENTR CENTRE CNTER CNTR
CTRS CENTERS|CIR CIRCLE CIRC CIRCL CRCL CRCLE|CIRS CIRCLES|CLF CLIFF|CLFS CLIFFS|CLB CLUB|CMN COMMON
CMNS COMMONS|COR CORNER|CORS CORNERS|CRSE COURSE|CT COURT|CTS COURTS|CV COVE|CVS COVES|CRK CREEK
CRES CRESCENT CRSENT CRSNT|CRST CREST|XING CROSSING CRSSNG|XRD CROSSROAD|XRDS CROSSROADS|CURV CURVE
DL DALE|DM DAM|DV DIVIDE DIV DVD|DR DRIVE DRIV DRV|DRS DRIVES|EST ESTATE|ESTS ESTATES
EXPY EXPRESSWAY EXP EXPR EXPRESS EXPW|EXT EXTENSION EXTN EXTNSN|EXTS EXTENSIONS|FALL FALL|FLS FALLS
FRY FERRY FRRY|FLD FIELD|FLDS FIELDS|FLT FLAT|FLTS FLATS|FRD FORD|FRDS FORDS|FRST FOREST FORESTS
FRG FORGE FORG|FRGS FORGES|FRK FORK|FRKS FORKS|FT FORT FRT|FWY FREEWAY FREEWY FRWAY FRWY
GDN GARDEN GARDN GRDEN GRDN|GDNS GARDENS GRDNS|GTWY GATEWAY GATEWY GATWAY GTWAY|GLN GLEN|GLNS GLENS
GRN GREEN|GRNS GREENS|GRV GROVE GROV|GRVS GROVES|HBR HARBOR HARB HARBR HRBOR|HBRS HARBORS|HVN HAVEN
HTS HEIGHTS HT|HWY HIGHWAY HIGHWY HIWAY HIWY HWAY|HL HILL|HLS HILLS|HOLW HOLLOW HLLW HOLLOWS HOLWS
INLT INLET|IS ISLAND ISLND|ISS ISLANDS ISLNDS|ISLE ISLE ISLES|JCT JUNCTION JCTION JCTN JUNCTN JUNCTON
JCTS JUNCTIONS JCTNS|KY KEY|KYS KEYS|KNL KNOLL KNOL|KNLS KNOLLS|LK LAKE|LKS LAKES|LAND LAND
LNDG LANDING LNDNG|LN LANE|LGT LIGHT|LGTS LIGHTS|LF LOAF|LCK LOCK|LCKS LOCKS|LDG LODGE LDGE LODG
LOOP LOOP LOOPS|MALL MALL|MNR MANOR|MNRS MANORS|MDW MEADOW|MDWS MEADOWS MEDOWS|MEWS MEWS|ML MILL
MLS MILLS|MSN MISSION MISSN MSSN|MTWY MOTORWAY|MT MOUNT MNT|MTN MOUNTAIN MNTAIN MNTN MOUNTIN MTIN
MTNS MOUNTAINS|NCK NECK|ORCH ORCHARD ORCHRD|OVAL OVAL OVL|OPAS OVERPASS|PARK PARK PRK PARKS
PKWY PARKWAY PARKWY PKWAY PKY PARKWAYS PKWYS|PASS PASS|PSGE PASSAGE|PATH PATH PATHS|PIKE PIKE PIKES
PNE PINE|PNES PINES|PL PLACE|PLN PLAIN|PLNS PLAINS|PLZ PLAZA PLZA|PT POINT|PTS POINTS|PRT PORT
PRTS PORTS|PR PRAIRIE PRR|RADL RADIAL RAD RADIEL|RAMP RAMP|RNCH RANCH RANCHES RNCHS|RPD RAPID
RPDS RAPIDS|RST REST|RDG RIDGE RDGE|RDGS RIDGES|RIV RIVER RVR RIVR|RD ROAD|RDS ROADS|RTE ROUTE|ROW ROW
RUE RUE|RUN RUN|SHL SHOAL|SHLS SHOALS|SHR SHORE SHOAR|SHRS SHORES|SKWY SKYWAY|SPG SPRING SPNG SPRNG
SPGS SPRINGS|SPUR SPUR|SQ SQUARE SQR SQRE SQU|SQS SQUARES|STA STATION STATN STN
STRA STRAVENUE STRAV STRAVEN STRAVN STRVN STRVNUE|STRM STREAM STREME|ST STREET STRT STR|STS STREETS
SMT SUMMIT SUMIT SUMITT|TER TERRACE TERR|TRWY THROUGHWAY|TRCE TRACE TRACES|TRAK TRACK TRACKS TRK TRKS
TRFY TRAFFICWAY|TRL TRAIL TRAILS TRLS|TRLR TRAILER TRLRS|TUNL TUNNEL TUNEL TUNLS TUNNELS TUNNL
TPKE TURNPIKE TRNPK TURNPK|UPAS UNDERPASS|UN UNION|UNS UNIONS|VLY VALLEY VALLY VLLY|VLYS VALLEYS
VIA VIADUCT VDCT VIADCT|VW VIEW|VWS VIEWS|VLG VILLAGE VILL VILLAG VILLG VILLIAGE|VLGS VILLAGES
VL VILLE|VIS VISTA VIST VST VSTA|WALK WALK WALKS|WALL WALL|WAY WAY WY|WAYS WAYS|WL WELL|WLS WELLS
"""
# Publication 28 appendix C2: secondary unit designators (what follows one is the unit).
_UNIT_WORDS = {
    "APARTMENT": "APT",
    "APT": "APT",
    "BASEMENT": "BSMT",
    "BSMT": "BSMT",
    "BUILDING": "BLDG",
    "BLDG": "BLDG",
    "DEPARTMENT": "DEPT",
    "DEPT": "DEPT",
    "FLOOR": "FL",
    "FL": "FL",
    "HANGAR": "HNGR",
    "HNGR": "HNGR",
    "LOT": "LOT",
    "OFFICE": "OFC",
    "OFC": "OFC",
    "PIER": "PIER",
    "ROOM": "RM",
    "RM": "RM",
    "SLIP": "SLIP",
    "SPACE": "SPC",
    "SPC": "SPC",
    "STOP": "STOP",
    "SUITE": "STE",
    "STE": "STE",
    "TRAILER": "TRLR",
    "TRLR": "TRLR",
    "UNIT": "UNIT",
    "#": "#",
}
_ORDINALS = {
    "FIRST": "1ST",
    "SECOND": "2ND",
    "THIRD": "3RD",
    "FOURTH": "4TH",
    "FIFTH": "5TH",
    "SIXTH": "6TH",
    "SEVENTH": "7TH",
    "EIGHTH": "8TH",
    "NINTH": "9TH",
    "TENTH": "10TH",
    "ELEVENTH": "11TH",
    "TWELFTH": "12TH",
}


def _suffix_tables() -> tuple[dict[str, str], dict[str, str]]:
    to_abbr: dict[str, str] = {}
    to_full: dict[str, str] = {}
    for entry in _SUFFIXES.replace("\n", "|").split("|"):
        if not entry.strip():
            continue
        abbr, full, *variants = entry.split()
        to_full.setdefault(abbr, full)
        for word in (abbr, full, *variants):
            to_abbr.setdefault(word, abbr)
    return to_abbr, to_full


SUFFIX_ABBR, SUFFIX_FULL = _suffix_tables()
DIRECTIONAL_ABBR = {**{a: a for a in _DIRECTIONALS}, **{f: a for a, f in _DIRECTIONALS.items()}}
DIRECTIONAL_ABBR |= {"NORTH EAST": "NE", "NORTH WEST": "NW", "SOUTH EAST": "SE", "SOUTH WEST": "SW"}

_JUNK = re.compile(r"[^A-Z0-9#/& -]+")
_NUMBER = re.compile(r"^(\d{1,9})(?:-?([A-Z]|\d/\d))?$")
_FRACTION = re.compile(r"^\d/\d$")
_POSTCODE = re.compile(r"^\d{5}(?:-\d{4})?$")


class AddressFileError(DomainError):
    """An address point file that cannot be loaded; the message names the line or feature."""

    code = "invalid_address_file"


def clean(text: str | None) -> str:
    """Upper case, punctuation but `#`, `/`, `&` and `-` dropped, blanks collapsed."""
    return " ".join(_JUNK.sub(" ", (text or "").upper().replace(".", "")).split())


def directional(word: str | None) -> str:
    """A directional as its Publication 28 abbreviation (`North` -> `N`); other words unchanged."""
    text = clean(word)
    return DIRECTIONAL_ABBR.get(text, text)


def suffix(word: str | None) -> str:
    """A street suffix as its Publication 28 standard abbreviation (`Avenue`, `Av` -> `AVE`)."""
    text = clean(word)
    return SUFFIX_ABBR.get(text, text)


def expand_directional(abbr: str) -> str:
    """The other direction: a directional abbreviation spelled out (`NW` -> `NORTHWEST`)."""
    return _DIRECTIONALS.get(abbr, abbr)


def expand_suffix(abbr: str) -> str:
    """The other direction: a standard suffix abbreviation as its primary name (`AVE` -> `AVENUE`)."""
    return SUFFIX_FULL.get(abbr, abbr)


@dataclass(frozen=True)
class Street:
    """A street name in its parts, each normalised: pre-directional, name, type, post-directional."""

    name: str
    predir: str = ""
    pretype: str = ""
    type: str = ""
    posdir: str = ""

    @property
    def key(self) -> str:
        """The one spelling both sides of a match compare exactly (`N MAIN ST`)."""
        return " ".join(p for p in (self.predir, self.pretype, self.name, self.type, self.posdir) if p)

    def spelled_out(self) -> str:
        """The street with directionals and type spelled out, as NENA's GIS data writes them."""
        words = (
            expand_directional(self.predir),
            self.pretype,
            self.name,
            expand_suffix(self.type),
            expand_directional(self.posdir),
        )
        return " ".join(w for w in words if w)


def _name(words: Iterable[str]) -> str:
    return " ".join(_ORDINALS.get(w, w) for w in words)


def street(
    name: str,
    predir: str | None = None,
    type_: str | None = None,
    posdir: str | None = None,
    pretype: str = "",
) -> Street:
    """A street from parts as a GIS or a PIDF-LO holds them, each normalised."""
    return Street(
        name=_name(clean(name).split()),
        predir=directional(predir),
        pretype=clean(pretype),
        type=suffix(type_),
        posdir=directional(posdir),
    )


def street_from_text(text: str) -> Street:
    """A street written as one string (`North Main Street`): the first word is a pre-directional,
    the last a post-directional and the one before it a type when they read as such and a name
    is left over (so `North Street` stays a street named North)."""
    words = clean(text).split()
    predir = posdir = type_ = ""
    if len(words) >= 2 and words[-1] in DIRECTIONAL_ABBR:
        posdir, words = DIRECTIONAL_ABBR[words[-1]], words[:-1]
    if len(words) >= 2 and words[-1] in SUFFIX_ABBR:
        type_, words = SUFFIX_ABBR[words[-1]], words[:-1]
    if len(words) >= 2 and words[0] in DIRECTIONAL_ABBR:
        predir, words = DIRECTIONAL_ABBR[words[0]], words[1:]
    return Street(name=_name(words), predir=predir, type=type_, posdir=posdir)


def house_number(text: str | int | None) -> tuple[int | None, str]:
    """A house number and its suffix (`123A` -> 123, `A`; `12 1/2` -> 12, `1/2`); None when it
    has no number."""
    if isinstance(text, int):
        return (text, "") if text >= 0 else (None, "")
    words = clean(text).split()
    if not words:
        return None, ""
    found = _NUMBER.match(words[0])
    if found is None:
        return None, ""
    extra = found.group(2) or (words[1] if len(words) > 1 and _FRACTION.match(words[1]) else "")
    return int(found.group(1)), extra


def place(text: str | None) -> str:
    """A municipality or community name as points and calls both compare it."""
    words = clean(text).split()
    if words[:2] == ["CITY", "OF"] or words[:2] == ["TOWN", "OF"]:
        words = words[2:]
    return " ".join("ST" if w == "SAINT" else w for w in words)


@dataclass(frozen=True)
class CivicAddress:
    """A call's civic address, normalised for matching."""

    number: int | None
    street: Street
    number_suffix: str = ""
    unit: str = ""
    municipality: str = ""
    postcode: str = ""
    state: str = ""

    def as_json(self) -> dict[str, Any]:
        """The address as intake stores it with the call."""
        s = self.street
        return {
            "number": self.number,
            "number_suffix": self.number_suffix,
            "predir": s.predir,
            "pretype": s.pretype,
            "name": s.name,
            "type": s.type,
            "posdir": s.posdir,
            "unit": self.unit,
            "municipality": self.municipality,
            "postcode": self.postcode,
            "state": self.state,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CivicAddress:
        """The address intake stored with a call."""
        s = Street(data["name"], data["predir"], data["pretype"], data["type"], data["posdir"])
        return cls(
            data["number"],
            s,
            data["number_suffix"],
            data["unit"],
            data["municipality"],
            data["postcode"],
            data["state"],
        )


def civic_from_pidf(elements: Mapping[str, str]) -> CivicAddress | None:
    """A PIDF-LO civicAddress (RFC 5139 and 6848 element names) as a civic address; None without
    a road."""
    road = elements.get("RD", "")
    if not clean(road):
        return None
    number, number_suffix = house_number(elements.get("HNO"))
    number_suffix = clean(elements.get("HNS")) or number_suffix
    parsed = street(
        road, elements.get("PRD"), elements.get("STS"), elements.get("POD"), elements.get("PRM", "")
    )
    if not parsed.type and not parsed.predir and not parsed.posdir:
        parsed = street_from_text(road)  # a CAD that wrote the whole street into RD
    unit = " ".join(clean(elements.get(k)) for k in ("BLD", "UNIT", "FLR", "ROOM") if clean(elements.get(k)))
    return CivicAddress(
        number=number,
        street=parsed,
        number_suffix=number_suffix,
        unit=unit,
        municipality=place(elements.get("A3") or elements.get("PCN")),
        postcode=clean(elements.get("PC")),
        state=clean(elements.get("A1")),
    )


def _unit_split(words: list[str]) -> tuple[list[str], str]:
    for i, word in enumerate(words):
        if i > 0 and (word in _UNIT_WORDS or word.startswith("#")):
            return words[:i], " ".join(words[i:])
    return words, ""


def civic_from_text(text: str) -> CivicAddress | None:
    """A one-line address as a CAD writes it (`123 N Main St Apt 4, Springfield, OR 97477`);
    None when it has no house number and street."""
    parts = [clean(p) for p in text.split(",")]
    parts = [p for p in parts if p]
    if not parts:
        return None
    tail = parts[-1].split() if len(parts) > 1 else []
    postcode = state = ""
    if tail and tail[-1] in ("US", "USA"):
        tail = tail[:-1]
    if tail and _POSTCODE.match(tail[-1]):
        postcode, tail = tail[-1], tail[:-1]
    if tail and len(tail[-1]) == 2 and tail[-1].isalpha() and (postcode or len(tail) == 1):
        state, tail = tail[-1], tail[:-1]
    places = [*parts[1:-1], " ".join(tail)] if len(parts) > 1 else []
    places = [p for p in places if p]
    words = parts[0].split()
    unit = ""
    if places and places[0].split()[0] in _UNIT_WORDS:
        unit, places = places[0], places[1:]
    if len(parts) == 1:
        words, municipality, postcode, state = _split_one_line(words)
    else:
        municipality = places[0] if places else ""
    number, number_suffix = house_number(" ".join(words[:2]))
    if number is None:
        return None
    words = words[2:] if number_suffix and len(words) > 1 and words[1] == number_suffix else words[1:]
    words, own_unit = _unit_split(words)
    if not words:
        return None
    return CivicAddress(
        number=number,
        street=street_from_text(" ".join(words)),
        number_suffix=number_suffix,
        unit=own_unit or unit,
        municipality=place(municipality),
        postcode=postcode,
        state=state,
    )


def _split_one_line(words: list[str]) -> tuple[list[str], str, str, str]:
    """A line without commas: the postcode, state and municipality follow the street's type."""
    postcode = state = ""
    if words and words[-1] in ("US", "USA"):
        words = words[:-1]
    if words and _POSTCODE.match(words[-1]):
        postcode, words = words[-1], words[:-1]
    if len(words) > 3 and len(words[-1]) == 2 and words[-1].isalpha() and words[-1] not in DIRECTIONAL_ABBR:
        state, words = words[-1], words[:-1]
    for i in range(len(words) - 1, 1, -1):
        if words[i] in SUFFIX_ABBR:
            end = i + 1
            if end < len(words) and words[end] in DIRECTIONAL_ABBR:
                end += 1
            rest = words[end:]
            if rest and (rest[0] in _UNIT_WORDS or rest[0].startswith("#")):
                rest = rest[2:]
                end += 2
            return words[:end], " ".join(rest), postcode, state
    return words, "", postcode, state


@dataclass(frozen=True)
class AddressPoint:
    """One address point of the jurisdiction's GIS, normalised."""

    number: int
    street: Street
    lat: float
    lon: float
    number_suffix: str = ""
    unit: str = ""
    municipality: str = ""
    community: str = ""
    postcode: str = ""
    state: str = ""


def _position(lat: Any, lon: Any, where: str) -> tuple[float, float]:
    try:
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError):
        raise AddressFileError(f"{where}: the position is not a number ({lat!r}, {lon!r})") from None
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        raise AddressFileError(f"{where}: the position ({la}, {lo}) is not on the Earth (WGS84 lat, lon)")
    return la, lo


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _nena_point(feature: Any, where: str) -> AddressPoint | None:
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        raise AddressFileError(f"{where}: not a GeoJSON Feature with properties")
    props: dict[str, Any] = feature["properties"]
    geometry = feature.get("geometry")
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise AddressFileError(f"{where}: a Point needs [lon, lat] coordinates")
        lat, lon = _position(coords[1], coords[0], where)
    elif props.get("Lat") is not None and props.get("Long") is not None:
        lat, lon = _position(props["Lat"], props["Long"], where)
    else:
        raise AddressFileError(f"{where}: no Point geometry and no Lat/Long")
    if not clean(_text(props.get("St_Name"))):
        raise AddressFileError(f"{where}: St_Name is empty")
    raw = props.get("Add_Number")
    number, found_suffix = house_number(raw if isinstance(raw, int) else _text(raw))
    if number is None:
        if raw in (None, "", 0):
            return None  # a point for a place without a house number cannot answer a civic address
        raise AddressFileError(f"{where}: Add_Number {raw!r} is not a house number")
    return AddressPoint(
        number=number,
        street=street(
            _text(props.get("St_Name")),
            _text(props.get("St_PreDir")),
            _text(props.get("St_PosTyp")),
            _text(props.get("St_PosDir")),
            " ".join(clean(_text(props.get(k))) for k in ("St_PreMod", "St_PreTyp") if props.get(k)),
        ),
        lat=lat,
        lon=lon,
        number_suffix=clean(_text(props.get("AddNum_Suf"))) or found_suffix,
        unit=clean(_text(props.get("Unit"))),
        municipality=place(_text(props.get("Inc_Muni"))),
        community=place(_text(props.get("Post_Comm"))),
        postcode=clean(_text(props.get("Post_Code"))),
        state=clean(_text(props.get("State"))),
    )


def read_nena_geojson(text: str) -> Iterator[AddressPoint]:
    """The address points of a GeoJSON FeatureCollection in NENA-STA-006 field names; an
    AddressFileError naming the feature at the first one that cannot be read."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AddressFileError(f"not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise AddressFileError("not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise AddressFileError("the FeatureCollection has no features list")
    for i, feature in enumerate(features):
        ident = feature.get("properties", {}).get("Site_NGUID") if isinstance(feature, dict) else None
        where = f"feature {i}" + (f" ({ident})" if isinstance(ident, str) else "")
        point = _nena_point(feature, where)
        if point is not None:
            yield point


_OA_REQUIRED = ("LON", "LAT", "NUMBER", "STREET")


def _oa_point(cells: Mapping[str, str], where: str) -> AddressPoint | None:
    """One OpenAddresses record (its fields by upper-case name, LAT and LON included)."""
    number, number_suffix = house_number(cells.get("NUMBER", ""))
    if number is None:
        if not cells.get("NUMBER"):
            return None  # OpenAddresses keeps points without a number; none can answer a call
        raise AddressFileError(f"{where}: NUMBER {cells['NUMBER']!r} is not a house number")
    if not clean(cells.get("STREET")):
        raise AddressFileError(f"{where}: STREET is empty")
    lat, lon = _position(cells.get("LAT"), cells.get("LON"), where)
    return AddressPoint(
        number=number,
        street=street_from_text(cells["STREET"]),
        lat=lat,
        lon=lon,
        number_suffix=number_suffix,
        unit=clean(cells.get("UNIT")),
        municipality=place(cells.get("CITY")),
        postcode=clean(cells.get("POSTCODE")),
        state=clean(cells.get("REGION")),
    )


def read_openaddresses_geojsonl(text: str) -> Iterator[AddressPoint]:
    """The address points of OpenAddresses' GeoJSON lines (one Point Feature a line, properties
    number, street, unit, city, district, region, postcode); an AddressFileError naming the line."""
    for line, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"line {line}"
        try:
            feature = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise AddressFileError(f"{where}: not JSON: {exc.msg}") from None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(props, dict):
            raise AddressFileError(f"{where}: not a GeoJSON Point Feature with properties")
        coords = geometry.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise AddressFileError(f"{where}: a Point needs [lon, lat] coordinates")
        cells = {str(k).upper(): _text(v).strip() for k, v in props.items()}
        point = _oa_point(cells | {"LON": _text(coords[0]), "LAT": _text(coords[1])}, where)
        if point is not None:
            yield point


def read_openaddresses_csv(text: str) -> Iterator[AddressPoint]:
    """The address points of an OpenAddresses CSV (LON,LAT,NUMBER,STREET,UNIT,CITY,DISTRICT,
    REGION,POSTCODE); an AddressFileError naming the line at the first one that cannot be read."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().upper() for h in next(reader)]
    except StopIteration:
        raise AddressFileError("line 1: the file is empty") from None
    missing = [c for c in _OA_REQUIRED if c not in header]
    if missing:
        raise AddressFileError(f"line 1: the header lacks {', '.join(missing)}")
    at = {name: header.index(name) for name in header}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise AddressFileError(f"line {line}: {len(row)} fields where the header has {len(header)}")

            point = _oa_point({name: row[i].strip() for name, i in at.items()}, f"line {line}")
            if point is not None:
                yield point
    except csv.Error as exc:
        raise AddressFileError(f"line {reader.line_num}: {exc}") from None


FileFormat = Literal["nena-geojson", "openaddresses-csv", "openaddresses-geojsonl"]
FORMATS: tuple[FileFormat, ...] = ("nena-geojson", "openaddresses-csv", "openaddresses-geojsonl")


def detect_format(name: str, head: str) -> FileFormat:
    """Which of the two formats a file is, by its name and then its first characters."""
    lower = name.lower()
    first = head.lstrip().split("\n", 1)[0]
    if lower.endswith((".geojsonl", ".geojsonseq", ".ndjson")):
        return "openaddresses-geojsonl"
    if lower.endswith(".csv"):
        return "openaddresses-csv"
    if first.startswith("{"):
        # One whole Feature on the first line is GeoJSON lines; a FeatureCollection spans lines.
        try:
            whole = json.loads(first)
        except json.JSONDecodeError:
            return "nena-geojson"
        return (
            "openaddresses-geojsonl"
            if isinstance(whole, dict) and whole.get("type") == "Feature"
            else "nena-geojson"
        )
    if lower.endswith((".geojson", ".json")):
        return "nena-geojson"
    if head.lstrip().upper().startswith(_OA_REQUIRED[:1]) or "LON" in head[:200].upper():
        return "openaddresses-csv"
    raise AddressFileError(f"{name}: neither GeoJSON nor an OpenAddresses CSV")


def file_format(name: str) -> FileFormat:
    """A format named on the command line; AddressFileError for another name."""
    for known in FORMATS:
        if name == known:
            return known
    raise AddressFileError(f"unknown format {name!r}: {', '.join(FORMATS)}")


def digest(text: str) -> str:
    """The sha256 of a file's text, recorded with the set it loaded."""
    return hashlib.sha256(text.encode()).hexdigest()


def read_points(name: str, text: str, fmt: FileFormat | None = None) -> list[AddressPoint]:
    """Every address point of a file, or an AddressFileError: a file is read whole before
    anything is stored, so a bad one is never half loaded."""
    fmt = fmt or detect_format(name, text[:1024])
    readers = {
        "nena-geojson": read_nena_geojson,
        "openaddresses-csv": read_openaddresses_csv,
        "openaddresses-geojsonl": read_openaddresses_geojsonl,
    }
    points = list(readers[fmt](text))
    if not points:
        raise AddressFileError(f"{name}: no address point with a house number and a street")
    return points
