"""Fixed events of every kind the trail must store byte for byte as it always has: floats the
standard library writes unlike RFC 8785, text outside the Basic Multilingual Plane, nested and
redacted fields, and events that can only be kept flagged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shared.envelope import Envelope

AT = datetime(2026, 12, 3, 10, 15, 7, 123456, tzinfo=UTC)
AT_WHOLE = datetime(2026, 12, 3, 10, 16, tzinfo=UTC)


def _envelope(n: int, type_: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "type": type_,
        "source": "/services/intake",
        "subject": "call-1",
        "time": "2026-12-03T10:15:00.5+00:00",
        "datacontenttype": "application/json",
        "correlationid": "call-1",
        "data": data,
        **extra,
    }


SAFETY = {
    "weapon": "no",
    "violence": "unknown",
    "medical": "no",
    "self_harm_imminent": "yes",
    "crime_in_progress": "no",
    "in_person_needed": "yes",
}
DECISION = {
    "route": "community",
    "reasons": ["incident type MNTL is behavioural health", "no risk flag"],
    "rules_version": "2026-11-01",
    "codes": [{"code": "bh_incident_type", "params": {"type": "MNTL"}}, {"code": "no_risk", "params": {}}],
    "behavioural_health": True,
}
EVENTS: list[dict[str, Any]] = [
    # A new call: nested shown fields, redacted contact details, cautions and an added field.
    _envelope(
        1,
        "calls.received.v1",
        {
            "call_id": "call-1",
            "psap_id": "psap-lane",
            "external_id": "CAD-0001",
            "incident_type": "MNTL",
            "origin": "911",
            "location": {
                "lat": 44.050312,
                "lon": -123.088934,
                "address": "100 W 10th Ave",
                "coordinates_known": True,
            },
            "language": "en",
            "safety": SAFETY,
            "callback_number": "+15415550123",
            "cautions": ["DOG ON PREMISES"],
            "decision": DECISION,
            "received_at": "2026-12-03T10:15:00.5+00:00",
            "caller_name": "added by a producer",
        },
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ),
    # An offer: floats of every kind the standard library writes unlike RFC 8785 (integral, exponent,
    # negative zero), a long mantissa, and a whole-degree position that stays integral on the grid.
    _envelope(
        2,
        "assignments.offered.v1",
        {
            "assignment_id": "asg-1",
            "call_id": "call-1",
            "agency_id": "agency-3",
            "team_id": "team-7",
            "attempt": 1,
            "deadline": "2026-12-03T10:17:00+00:00",
            "offer": {
                "location": {
                    "lat": 44.0,
                    "lon": -123.0,
                    "address": "Ünïcödé Straße 5, 東京",
                    "uncertainty_m": 1e-05,
                },
                "presenting_problem": 'talks of "ending it"\nline two\ttab \x01 \x7f \u2028 back\\slash',
                "language": "es",
                "safety": SAFETY,
                "callback_number": "+15415550123",
                "cautions": [],
            },
            "distance_km": 0.30000000000000004,
            "eta_min": 12.0,
            "weights": [1e17, -0.0, 2.5e-7, 1e21, 123456789.125, -1.5],
        },
    ),
    # Non-BMP text in a shown value, in a hidden value and in a key no model declares.
    _envelope(
        3,
        "assignments.responded.v1",
        {
            "assignment_id": "asg-1",
            "call_id": "call-1",
            "agency_id": "agency-3",
            "team_id": "team-7",
            "attempt": 1,
            "response": "declined",
            "reason_code": "team_busy \U0001f6d1",
            "reason_text": "on another call 😀",
            "responded_at": "2026-12-03T10:15:40+00:00",
            "ключ \U0001f511": "value",
        },
    ),
    # Text that looks like numbers to a text scan: markers, 16 digits and an escaped NUL as text.
    _envelope(
        4,
        "assignments.status_changed.v1",
        {
            "assignment_id": "asg-1",
            "call_id": "call-1",
            "agency_id": "agency-3",
            "team_id": "team-7e-5",
            "attempt": 2,
            "status": "cleared",
            "disposition": ":1.0,[2e+5]",
            "urgency": "1234567890123456",
            "reported_at": "2026-12-03T10:45:00+00:00",
            "eta_min": 7,
            "note": "literally \\u0000, not a NUL",
        },
    ),
    # A capacity snapshot: columns of integers, polygon corners as floats.
    _envelope(
        5,
        "teams.capacity.v1",
        {
            "as_of": "2026-12-03T10:15:05+00:00",
            "every_s": 5.0,
            "teams_on_roster": 3,
            "team_ids": ["team-1", "team-2", "team-3"],
            "places": [1, 2, 1],
            "lat_e4": [440503, 440611, -1],
            "lon_e4": [-1230889, -1230901, 0],
            "radius_m": [15000, 0, 9007199254740991],
            "areas": {"team-2": [[44.06, -123.09], [44.07, -123.1], [44.06, -123.11]]},
        },
        source="/services/matching",
        subject="capacity",
    ),
    # An access record with integers at the edge of what a double holds exactly.
    _envelope(
        6,
        "access.recorded.v1",
        {
            "service": "audit",
            "outcome": "denied",
            "method": "GET",
            "path": "/v1/audit/calls/call-1",
            "tenant_id": None,
            "reason": "bad_token",
            "client": "10.0.0.7",
            "at": "2026-12-03T10:15:06+00:00",
            "count": 3,
            "big": [2**53, -(2**60), 2**53 - 1, 10**17],
        },
        causationid=None,
    ),
    # A type audit does not know: its data shows nothing.
    _envelope(7, "something.new.v1", {"call_id": "call-1", "agency_id": 17, "x": 1.0}),
    # Not canonical (an integer no double holds; a NUL jsonb refuses; a lone surrogate): flagged.
    _envelope(8, "calls.cancelled.v1", {"call_id": "call-1", "psap_id": "psap-lane", "n": 10**30 + 7}),
    _envelope(9, "calls.cancelled.v1", {"call_id": "call-1", "psap_id": "psap-lane", "reason": "a\u0000b"}),
    _envelope(10, "calls.cancelled.v1", {"call_id": "call-1", "psap_id": "psap-lane", "reason": "\ud800"}),
    # A call update: a position with no coordinates (0.0 on the grid), an empty list, and keys that
    # sort apart by code point and by UTF-16 unit.
    _envelope(
        11,
        "calls.updated.v1",
        {
            "call_id": "call-1",
            "psap_id": "psap-lane",
            "incident_type": "MNTL",
            "location": {"lat": 0.0, "lon": 0.0, "coordinates_known": False, "reference_url": "https://x/y"},
            "safety": SAFETY,
            "decision": {**DECISION, "route": "review", "codes": [], "review_deadline": None},
            "updated_at": "2026-12-03T10:20:00+00:00",
            "reason": "override",
            "override_reason_code": "caller_request",
            "override_reason_text": "free text",
            "\ufb01": 1,
            "\U00010000": 2,
        },
    ),
]
# Nonces fixed per row (the sixth row's seal happens to hold sixteen decimal digits in its hex).
NONCES = [bytes([n]) * 16 for n in range(1, len(EVENTS) + 1)]


def received(envelope: dict[str, Any]) -> Envelope | None:
    """The event as audit's consumer hands it over, parsed from the bytes a producer sent."""
    try:
        return Envelope.from_bytes(json.dumps(envelope).encode())
    except ValidationError:
        return None
