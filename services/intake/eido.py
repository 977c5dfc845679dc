"""NENA EIDO (NENA-STA-021) in: lenient validation of what PSAPs send, strict normalisation to a call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from services.intake import addresses, language, pidf
from services.intake.addresses import CivicAddress
from services.intake.call import CallInput
from shared.domain_errors import Invalid
from shared.events import Answer, Location, SafetyScreen

# Our triage extension: declared in `eidoExtensionId`, carried under EXTENSION_KEY.
EXTENSION_ID = "urn:careroute:eido:extension:triage:1"
EXTENSION_KEY = "careRouteTriage"
BCP47 = language.BCP47
# Which location to trust first when a document carries several (NENA LocationType registry).
_LOCATION_PREFERENCE = ("CurrentIncident", "InitialIncident", "Caller", "RoutingLocation")
_TIMESTAMP = AliasChoices("lastUpdateTimeStamp", "lastUpdateTimestamp", "LastUpdateTimeStamp")

Text = Annotated[str, Field(max_length=2000)]
Items = Annotated[list[Text], Field(max_length=100)]


class EidoError(Invalid):
    """The document cannot be turned into a call; the code names why and the detail says it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


class Component(BaseModel):
    """The prologue every EIDO data component shares; unknown members are kept, never refused."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str | None = Field(default=None, alias="$id", max_length=512)
    lastUpdateTimeStamp: datetime | None = Field(default=None, validation_alias=_TIMESTAMP)

    @field_validator("lastUpdateTimeStamp")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        # A timestamp without an offset is read as UTC, so versions always compare.
        return v.replace(tzinfo=UTC) if v is not None and v.tzinfo is None else v


class IncidentComponent(Component):
    """General information about the incident: its type above all."""

    incidentTypeCommonRegistryText: Text | Items | None = None
    incidentTypeInternalCode: Text | None = None
    incidentTypeInternalText: Text | None = None


class LocationComponent(Component):
    """A location: PIDF-LO by value or a URL to dereference."""

    locationTypeDescriptionRegistryText: Text | None = None
    locationByValue: str | None = Field(default=None, max_length=131_072)
    locationByReferenceUrl: Text | None = None


class Reference(BaseModel):
    """A reference to a data component by its `$id`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    ref: Text | None = Field(default=None, alias="$ref")


class AgencyComponent(Component):
    """An agency the document names: the PSAP that sent it among them."""

    agencyType: Text | Items | None = None
    agencyRoleDescriptionRegistryText: Text | Items | None = None
    # The 2020 draft names the agency here and gives the component an id of its own.
    organizationIdentification: Text | None = None


class PersonComponent(Component):
    """A person of the incident; the caller's language is read from its NIEM person fields."""

    personIncidentRoleRegistryText: Text | Items | None = None
    ncPersonComponent: dict[str, Any] | None = None


class CautionComponent(Component):
    """Something that might threaten the safety of people at the scene."""

    cautionTypeCommonRegistryText: Text | Items | None = None
    cautionTypeCommonSubRegistryText: Text | Items | None = None
    cautionTypeInternalText: Text | None = None
    cautionSeverity: Text | None = None


class CallbackComponent(Component):
    """How to call someone back."""

    callBackInformationUri: Text | Items | None = None


class NotesComponent(Component):
    """A call-taker's note (stays in intake)."""

    notesActionComments: str | None = Field(default=None, max_length=10_000)


class ScreenIn(BaseModel):
    """The structured safety screen as the extension spells it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    weapon: Answer = Answer.unknown
    violence: Answer = Answer.unknown
    medical: Answer = Answer.unknown
    selfHarmImminent: Answer = Field(
        default=Answer.unknown, validation_alias=AliasChoices("selfHarmImminent", "self_harm_imminent")
    )
    crimeInProgress: Answer = Field(
        default=Answer.unknown, validation_alias=AliasChoices("crimeInProgress", "crime_in_progress")
    )
    inPersonNeeded: Answer = Field(
        default=Answer.unknown, validation_alias=AliasChoices("inPersonNeeded", "in_person_needed")
    )


class TriageExtension(BaseModel):
    """careroute's EIDO extension: what triage needs that EIDO has no element for."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    safetyScreen: ScreenIn = Field(default_factory=ScreenIn)
    consentToNonPoliceResponse: bool | None = None
    preferredLanguage: str | None = Field(default=None, pattern=BCP47, max_length=35)
    mpdsDeterminant: str | None = Field(default=None, pattern=r"^[0-9]{1,2}-?[A-EOΩ]-?[0-9]{1,2}[A-Z]?$")
    origin: Literal["911", "988", "311"] | None = None


class EidoDocument(Component):
    """An Emergency Incident Data Object as PSAPs really send it (public samples disagree on spelling)."""

    incidentTrackingIdentifier: Text | None = None
    eidoVersion: Text | None = Field(
        default=None, validation_alias=AliasChoices("eidoVersion", "EIDOVersion")
    )
    eidoExtensionId: Text | Items | None = None
    # The agency that sent the document (its `$id` in agencyComponent); the 2020 draft's name for it.
    updatedByAgencyReference: Reference | None = None
    OwningAgencyIdentifier: Text | None = None
    incidentComponent: IncidentComponent | Annotated[list[IncidentComponent], Field(max_length=50)] | None = (
        None
    )
    agencyComponent: Annotated[list[AgencyComponent], Field(max_length=50)] | None = None
    personComponent: Annotated[list[PersonComponent], Field(max_length=100)] | None = None
    locationComponent: Annotated[list[LocationComponent], Field(max_length=50)] | None = None
    # The 2020 draft's name for locationComponent.
    locationInformationComponent: Annotated[list[LocationComponent], Field(max_length=50)] | None = None
    cautionComponent: Annotated[list[CautionComponent], Field(max_length=50)] | None = None
    callbackComponent: Annotated[list[CallbackComponent], Field(max_length=50)] | None = None
    notesComponent: Annotated[list[NotesComponent], Field(max_length=200)] | None = None
    careRouteTriage: TriageExtension | None = None


def _listed(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _incidents(doc: EidoDocument) -> list[IncidentComponent]:
    component = doc.incidentComponent
    if isinstance(component, list):
        return component
    return [] if component is None else [component]


_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _incident(doc: EidoDocument) -> IncidentComponent | None:
    """The most recent incident component (by lastUpdateTimeStamp; among equals, the last listed)."""
    incidents = _incidents(doc)
    if not incidents:
        return None
    return max(reversed(incidents), key=lambda c: c.lastUpdateTimeStamp or _EARLIEST)


def _type_of(incident: IncidentComponent) -> str:
    common = [t.strip() for t in _listed(incident.incidentTypeCommonRegistryText) if t.strip()]
    if common:
        return common[0][:64]
    return (incident.incidentTypeInternalCode or "").strip()[:64]


def incident_type(doc: EidoDocument) -> str:
    """The common incident type of the most recent incident component, else its internal code
    (mapped later), else empty."""
    incident = _incident(doc)
    return "" if incident is None else _type_of(incident)


def other_incidents(doc: EidoDocument) -> tuple[dict[str, str | None], ...]:
    """The incident components whose type disagrees with the most recent one's: kept, not used."""
    winner = _incident(doc)
    if winner is None:
        return ()
    chosen = _type_of(winner)
    return tuple(
        {
            "id": c.id,
            "incident_type": _type_of(c),
            "lastUpdateTimeStamp": c.lastUpdateTimeStamp.isoformat() if c.lastUpdateTimeStamp else None,
        }
        for c in _incidents(doc)
        if c is not winner and _type_of(c) != chosen
    )


def senders(doc: EidoDocument) -> tuple[str, ...]:
    """The agency identifiers the document names as its sender, lower-cased: the document's
    updatedByAgencyReference (OwningAgencyIdentifier in the 2020 draft) and each PSAP among its
    agencyComponent."""
    named = [doc.updatedByAgencyReference.ref if doc.updatedByAgencyReference else None]
    named.append(doc.OwningAgencyIdentifier)
    for agency in doc.agencyComponent or []:
        if "psap" in (t.strip().lower() for t in _listed(agency.agencyType)):
            named.append(agency.organizationIdentification or agency.id)
    return tuple(dict.fromkeys(n.strip().lower() for n in named if n and n.strip()))


def _caller_language(doc: EidoDocument, warnings: list[str]) -> str | None:
    """The caller's language from the NIEM person fields (nc:PersonPrimaryLanguage), a caller's
    first, then any other person's."""
    people = doc.personComponent or []
    callers = [p for p in people if "Caller" in _listed(p.personIncidentRoleRegistryText)]
    for person in [*callers, *(p for p in people if p not in callers)]:
        fields = person.ncPersonComponent or {}
        spoken = fields.get("PersonPrimaryLanguage", fields.get("nc:PersonPrimaryLanguage"))
        tag, unread = language.primary_language(spoken)
        if unread:
            warnings.append(f"person {person.id or '?'}: language {unread[0]!r} was not understood")
        if tag is not None:
            return tag
    return None


def _location(doc: EidoDocument, warnings: list[str]) -> tuple[Location, CivicAddress | None]:
    """The best location the document gives, with its civic address when it has no coordinates."""
    components = [*(doc.locationComponent or []), *(doc.locationInformationComponent or [])]

    def rank(c: LocationComponent) -> int:
        kind = c.locationTypeDescriptionRegistryText or ""
        return _LOCATION_PREFERENCE.index(kind) if kind in _LOCATION_PREFERENCE else len(_LOCATION_PREFERENCE)

    address: str | None = None
    civic: CivicAddress | None = None
    reference: str | None = None
    for component in sorted(components, key=rank):
        if component.locationByValue:
            try:
                found = pidf.parse(component.locationByValue)
            except pidf.UnsafeXml as exc:
                raise EidoError("unsafe_xml", f"location {component.id or '?'}: {exc}") from None
            except pidf.MalformedXml as exc:
                warnings.append(f"location {component.id or '?'} was not read: {exc}")
                continue
            if found.lat is not None and found.lon is not None:
                located = Location(
                    lat=found.lat,
                    lon=found.lon,
                    address=found.address,
                    coordinates_known=True,
                    uncertainty_m=found.uncertainty_m,
                )
                return located, None
            if address is None and found.address:
                address = found.address
                civic = addresses.civic_from_pidf(found.civic or {})
        if component.locationByReferenceUrl and reference is None:
            reference = component.locationByReferenceUrl
    if reference is not None:
        warnings.append("a location by reference is kept but not dereferenced")
    if address is None and reference is None:
        warnings.append("the document has no usable location")
    unlocated = Location(lat=0, lon=0, address=address, coordinates_known=False, reference_url=reference)
    return unlocated, civic


def _callback_number(doc: EidoDocument) -> str | None:
    for component in doc.callbackComponent or []:
        for uri in _listed(component.callBackInformationUri):
            if uri.lower().startswith("tel:"):
                return uri[4:].split(";", 1)[0][:32] or None
    return None


def _cautions(doc: EidoDocument) -> tuple[str, ...]:
    words: list[str] = []
    for c in doc.cautionComponent or []:
        words += _listed(c.cautionTypeCommonRegistryText) + _listed(c.cautionTypeCommonSubRegistryText)
        words += _listed(c.cautionTypeInternalText)
    return tuple(w.strip().upper() for w in words if w.strip())


def _extension(doc: EidoDocument, warnings: list[str]) -> TriageExtension:
    declared = EXTENSION_ID in _listed(doc.eidoExtensionId)
    if doc.careRouteTriage is not None and not declared:
        warnings.append(f"{EXTENSION_KEY} ignored: {EXTENSION_ID} is not declared in eidoExtensionId")
        return TriageExtension()
    if declared and doc.careRouteTriage is None:
        warnings.append(f"{EXTENSION_ID} is declared but {EXTENSION_KEY} is missing")
    return doc.careRouteTriage or TriageExtension()


def _stamps(doc: EidoDocument) -> tuple[tuple[str, datetime], ...]:
    """Every lastUpdateTimeStamp of the document and of the components intake reads, with where."""
    found = [("lastUpdateTimeStamp", doc.lastUpdateTimeStamp)]
    incidents = _incidents(doc)
    for i, incident in enumerate(incidents):
        where = f"incidentComponent[{i}]" if isinstance(doc.incidentComponent, list) else "incidentComponent"
        found.append((f"{where}.lastUpdateTimeStamp", incident.lastUpdateTimeStamp))
    listed: dict[str, list[Any] | None] = {
        "locationComponent": doc.locationComponent,
        "locationInformationComponent": doc.locationInformationComponent,
        "cautionComponent": doc.cautionComponent,
        "callbackComponent": doc.callbackComponent,
        "notesComponent": doc.notesComponent,
    }
    for name, components in listed.items():
        for i, component in enumerate(components or []):
            found.append((f"{name}[{i}].lastUpdateTimeStamp", component.lastUpdateTimeStamp))
    return tuple((where, stamp) for where, stamp in found if stamp is not None)


def normalise(doc: EidoDocument) -> CallInput:
    """Turn an EIDO into the internal call model; EidoError when that cannot be done safely."""
    external_id = (doc.incidentTrackingIdentifier or doc.id or "").strip()
    if not external_id:
        raise EidoError("invalid_eido", "the document has neither $id nor incidentTrackingIdentifier")
    warnings: list[str] = []
    if doc.eidoVersion not in (None, "1.0"):
        warnings.append(f"eidoVersion {doc.eidoVersion!r} is not 1.0; read as 1.0")
    if doc.lastUpdateTimeStamp is None:
        warnings.append("no lastUpdateTimeStamp: a later document with this id is a duplicate")
    extension = _extension(doc, warnings)
    screen = extension.safetyScreen
    others = other_incidents(doc)
    if others:
        warnings.append(
            f"{len(others)} other incidentComponent disagree with the most recent one; it decides and"
            " the others are kept"
        )
    spoken = _caller_language(doc, warnings)
    notes = [n.notesActionComments for n in doc.notesComponent or [] if n.notesActionComments]
    location, civic = _location(doc, warnings)
    return CallInput(
        external_id=external_id[:512],
        incident_type=incident_type(doc),
        location=location,
        civic=civic,
        safety=SafetyScreen(
            weapon=screen.weapon,
            violence=screen.violence,
            medical=screen.medical,
            self_harm_imminent=screen.selfHarmImminent,
            crime_in_progress=screen.crimeInProgress,
            in_person_needed=screen.inPersonNeeded,
        ),
        origin=extension.origin or "911",
        language=extension.preferredLanguage or spoken,
        callback_number=_callback_number(doc),
        narrative="\n".join(notes)[:10_000] or None,
        consent_non_police=extension.consentToNonPoliceResponse,
        mpds_determinant=extension.mpdsDeterminant,
        version=doc.lastUpdateTimeStamp,
        cautions=_cautions(doc),
        source_format="eido",
        warnings=tuple(warnings),
        stamps=_stamps(doc),
        other_incidents=others,
        senders=senders(doc),
    )


def example() -> dict[str, Any]:
    """A small EIDO that uses the triage extension (for the OpenAPI page and the tests)."""
    return {
        "$id": "urn:emergency:uid:incidentid:0001:psap.example.org",
        "lastUpdateTimeStamp": "2026-11-26T10:00:00Z",
        "eidoVersion": "1.0",
        "eidoExtensionId": [EXTENSION_ID],
        "issuingElementIdentification": "cad.psap.example.org",
        "incidentComponent": {"incidentTypeCommonRegistryText": "MNTL"},
        "locationComponent": [
            {
                "locationTypeDescriptionRegistryText": "CurrentIncident",
                "locationByValue": pidf.point(44.0503, -123.0889),
            }
        ],
        EXTENSION_KEY: {
            "safetyScreen": {
                "weapon": "no",
                "violence": "no",
                "medical": "no",
                "selfHarmImminent": "no",
                "crimeInProgress": "no",
            },
            "consentToNonPoliceResponse": True,
            "preferredLanguage": "es",
            "origin": "911",
        },
    }
