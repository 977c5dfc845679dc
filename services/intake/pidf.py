"""PIDF-LO (RFC 4119, 5139, 5491) location objects: civic addresses and geodetic shapes, parsed safely."""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

GML = "http://www.opengis.net/gml"
CIVIC = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
# Civic address elements in the order a person reads them (RFC 5139).
_CIVIC_ORDER = ("HNO", "HNS", "PRD", "RD", "STS", "POD", "LOC", "A6", "A5", "A4", "A3", "A2", "A1", "PC")
_SHAPES = ("Point", "Circle", "Ellipse", "Ellipsoid", "Sphere", "ArcBand", "Polygon", "Prism")


class UnsafeXml(ValueError):
    """The document uses a DTD, entities or external references: refused, never expanded."""


class MalformedXml(ValueError):
    """The document is not well-formed XML."""


@dataclass(frozen=True)
class PidfLocation:
    """What a PIDF-LO says about where someone is."""

    lat: float | None = None
    lon: float | None = None
    shape: str | None = None
    uncertainty_m: float | None = None
    address: str | None = None
    # The civic address's elements by their RFC 5139 names (HNO, RD, STS, A3, PC, ...).
    civic: dict[str, str] | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _floats(text: str | None) -> list[float]:
    try:
        values = [float(v) for v in (text or "").split()]
    except ValueError:
        return []
    return [v for v in values if math.isfinite(v)]


def _geodetic(root: Element) -> PidfLocation | None:
    for shape in root.iter():
        name = _local(shape.tag)
        if name not in _SHAPES:
            continue
        coords = [
            _floats(e.text) for e in shape.iter() if _local(e.tag) in ("pos", "posList") and _ns(e.tag) == GML
        ]
        flat = [c for c in coords if len(c) >= 2]
        if not flat:
            continue
        if name in ("Polygon", "Prism"):
            # A polygon's centre stands in for a position; posList holds lat/lon pairs.
            values = [v for c in flat for v in c]
            pairs = list(zip(values[0::2], values[1::2], strict=False))
            lat = sum(p[0] for p in pairs) / len(pairs)
            lon = sum(p[1] for p in pairs) / len(pairs)
        else:
            lat, lon = flat[0][0], flat[0][1]
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        radius = None
        for e in shape:
            if _local(e.tag) in ("radius", "semiMajorAxis", "outerRadius"):
                values = _floats(e.text)
                radius = values[0] if values else None
        return PidfLocation(lat=lat, lon=lon, shape=name, uncertainty_m=radius)
    return None


def _civic(root: Element) -> tuple[str, dict[str, str]] | None:
    for element in root.iter(f"{{{CIVIC}}}civicAddress"):
        parts = {_local(e.tag): (e.text or "").strip()[:200] for e in element}
        words = [parts[k] for k in _CIVIC_ORDER if parts.get(k)]
        if parts.get("country"):
            words.append(parts["country"])
        if words:
            return " ".join(words)[:500], {k: v for k, v in parts.items() if v}
    return None


def parse(text: str) -> PidfLocation:
    """Read a PIDF-LO document; UnsafeXml for entity tricks, MalformedXml for broken XML."""
    try:
        # Leading blanks before the XML declaration are common in the wild and harmless.
        root = fromstring(text.strip(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeXml(
            f"XML with a DTD, entities or external references is refused ({type(exc).__name__})"
        ) from None
    except ParseError as exc:
        raise MalformedXml(f"not well-formed XML: {exc}") from None
    geodetic = _geodetic(root)
    address, civic = _civic(root) or (None, None)
    if geodetic is not None:
        return PidfLocation(
            geodetic.lat, geodetic.lon, geodetic.shape, geodetic.uncertainty_m, address, civic
        )
    return PidfLocation(address=address, civic=civic)


def point(lat: float, lon: float) -> str:
    """A minimal PIDF-LO document locating a caller at one WGS84 point (what a CAD would send)."""
    return (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml">'
        "<tuple id='t'><status><gp:geopriv><gp:location-info><gml:Point>"
        f"<gml:pos>{lat} {lon}</gml:pos></gml:Point></gp:location-info>"
        "</gp:geopriv></status></tuple></presence>"
    )
