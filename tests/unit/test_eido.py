"""EIDO normalisation and PIDF-LO reading: lenient on spelling, strict on meaning, safe against XML tricks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.intake import eido, pidf
from services.intake.call import CallInput
from shared.events import Answer

SAMPLES = Path(__file__).parents[1] / "fixtures" / "eido"
GEO = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gml="http://www.opengis.net/gml"'
    ' xmlns:gs="http://www.opengis.net/pidflo/1.0">{}</presence>'
)


def normalise(doc: dict[str, Any]) -> CallInput:
    return eido.normalise(eido.EidoDocument.model_validate(doc))


def test_the_example_reads_type_location_screen_and_extension():
    call = normalise(eido.example())
    assert call.incident_type == "MNTL" and call.source_format == "eido"
    assert (call.location.lat, call.location.lon, call.location.coordinates_known) == (
        44.0503,
        -123.0889,
        True,
    )
    assert call.safety.weapon == Answer.no and call.language == "es" and call.consent_non_police is True
    assert call.version is not None and call.version.isoformat() == "2026-11-26T10:00:00+00:00"
    assert call.warnings == ()


def test_the_three_timestamp_spellings_give_the_same_version():
    versions = set()
    for spelling in ("lastUpdateTimeStamp", "lastUpdateTimestamp", "LastUpdateTimeStamp"):
        doc = eido.example()
        doc[spelling] = doc.pop("lastUpdateTimeStamp")
        versions.add(normalise(doc).version)
    assert len(versions) == 1


def test_the_extension_counts_only_when_declared():
    doc = eido.example()
    doc["eidoExtensionId"] = []
    call = normalise(doc)
    assert call.safety.weapon == Answer.unknown and call.language is None
    assert any("not declared" in w for w in call.warnings)


def test_legacy_tracking_identifier_wins_over_the_header_id():
    doc = eido.example() | {
        "$id": "header:0",
        "incidentTrackingIdentifier": "urn:emergency:uid:incidentid:7:x",
    }
    assert normalise(doc).external_id == "urn:emergency:uid:incidentid:7:x"


def test_a_document_without_any_id_is_refused():
    doc = eido.example()
    doc.pop("$id")
    with pytest.raises(eido.EidoError):
        normalise(doc)


def test_samples_without_coordinates_keep_the_civic_address_and_the_reference():
    call = normalise(json.loads((SAMPLES / "nena_sample_call_transfer_eido.json").read_text()))
    assert call.incident_type == "" and call.location.coordinates_known is False
    assert call.location.address == "42 W Cellular Street Wilmington DE US"
    assert call.location.reference_url == "https://lrf.osp.com?oasufdqwerjn12346jfias"
    assert call.callback_number == "8195551212"
    # The civic address is also read in its parts, ready to geocode.
    assert call.civic is not None
    assert (call.civic.number, call.civic.street.key, call.civic.municipality) == (
        42,
        "W CELLULAR ST",
        "WILMINGTON",
    )
    assert call.civic.state == "DE"


def test_a_location_with_coordinates_is_not_geocoded():
    call = normalise(eido.example())
    assert call.location.coordinates_known is True and call.civic is None


@pytest.mark.parametrize(
    ("shape", "radius"),
    [
        ("<gml:Point><gml:pos>44.1 -123.1</gml:pos></gml:Point>", None),
        ("<gs:Circle><gml:pos>44.1 -123.1</gml:pos><gs:radius>25</gs:radius></gs:Circle>", 25.0),
        (
            "<gs:Ellipse><gml:pos>44.1 -123.1</gml:pos><gs:semiMajorAxis>40</gs:semiMajorAxis></gs:Ellipse>",
            40.0,
        ),
    ],
)
def test_geodetic_point_circle_and_ellipse(shape: str, radius: float | None):
    found = pidf.parse(GEO.format(shape))
    assert (found.lat, found.lon, found.uncertainty_m) == (44.1, -123.1, radius)


def test_out_of_range_coordinates_are_not_a_position():
    assert pidf.parse(GEO.format("<gml:Point><gml:pos>123 -500</gml:pos></gml:Point>")).lat is None


@pytest.mark.parametrize(
    "xml",
    [
        '<!DOCTYPE p [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><presence>&b;</presence>',
        '<!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><presence>&x;</presence>',
        '<!DOCTYPE p SYSTEM "http://127.0.0.1:1/evil.dtd"><presence/>',
    ],
)
def test_dtds_and_entities_are_refused(xml: str):
    with pytest.raises(pidf.UnsafeXml):
        pidf.parse(xml)


def test_broken_xml_is_reported_not_guessed():
    with pytest.raises(pidf.MalformedXml):
        pidf.parse("<presence><unclosed></presence>")


def _person(language: Any, role: str = "Caller", pid: str = "p") -> dict[str, Any]:
    return {
        "$id": pid,
        "personIncidentRoleRegistryText": [role],
        "ncPersonComponent": {"PersonPrimaryLanguage": language},
    }


def test_the_callers_language_is_read_from_the_niem_person_fields():
    doc = eido.example()
    del doc[eido.EXTENSION_KEY]["preferredLanguage"]
    doc["personComponent"] = [_person({"LanguageCode": "vie"}, "InvolvedPerson", "p1"), _person("Spanish")]
    assert normalise(doc).language == "es"  # the caller's, ahead of the other person's
    doc["personComponent"] = [_person({"LanguageCode": "vie"}, "InvolvedPerson")]
    assert normalise(doc).language == "vi"
    doc["personComponent"] = [_person([{"nc:LanguageName": "Qwertyish"}, "zho"])]
    call = normalise(doc)
    assert call.language == "zh" and any("'Qwertyish' was not understood" in w for w in call.warnings)


def test_the_senders_are_the_reference_the_2020_owner_and_every_psap_agency():
    transfer = json.loads((SAMPLES / "nena_sample_call_transfer_eido.json").read_text())
    assert normalise(transfer).senders == ("state.pa.us",)
    draft = json.loads((SAMPLES / "nena_sample_eido_2020_draft.json").read_text())
    assert normalise(draft).senders == ("psap.allegheny.pa.us",)
    doc = eido.example() | {
        "updatedByAgencyReference": {"$ref": "PSAP.Metro.example.gov"},
        "agencyComponent": [
            {"$id": "police.metro.example.gov", "agencyType": ["police"]},
            {"$id": "backup.example.gov", "agencyType": ["psap"]},
        ],
    }
    assert normalise(doc).senders == ("psap.metro.example.gov", "backup.example.gov")
    assert normalise(eido.example()).senders == ()


def test_every_incident_component_is_read_and_the_most_recent_decides():
    doc = eido.example() | {
        "incidentComponent": [
            {
                "$id": "a",
                "lastUpdateTimeStamp": "2026-11-26T09:00:00Z",
                "incidentTypeCommonRegistryText": "ASSAULT",
            },
            {"$id": "b", "lastUpdateTimeStamp": "2026-11-26T09:30:00Z", "incidentTypeInternalCode": "10-96"},
            {"$id": "c", "incidentTypeCommonRegistryText": ["WELFARE"]},
        ]
    }
    call = normalise(doc)
    assert call.incident_type == "10-96"
    assert [o["id"] for o in call.other_incidents] == ["a", "c"]
    assert {where for where, _ in call.stamps} >= {"incidentComponent[0].lastUpdateTimeStamp"}
    # Components that agree are not reported; among equal stamps the last listed decides.
    same = eido.example() | {"incidentComponent": [{"incidentTypeCommonRegistryText": "MNTL"}] * 3}
    assert normalise(same).other_incidents == ()
    tie = eido.example() | {
        "incidentComponent": [
            {"incidentTypeCommonRegistryText": "ASSAULT"},
            {"incidentTypeCommonRegistryText": "MNTL"},
        ]
    }
    assert normalise(tie).incident_type == "MNTL"
