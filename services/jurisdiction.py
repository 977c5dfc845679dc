"""The whole jurisdiction file: the shared part with each service's own section, validated at once."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict

from services.intake.rules import Triage
from services.matching.rules import Matching
from shared.jurisdiction import Jurisdiction, load_file_as, parse_as


class Deployment(Jurisdiction):
    """A whole deployment with intake's triage rules and matching's rules validated in place."""

    # Errors name the document as they always have, whoever composes it.
    model_config = ConfigDict(title="Jurisdiction")

    triage: Triage
    matching: Matching | None = None


def parse(text: str, source: str = "<string>") -> Deployment:
    """Validate a whole jurisdiction document; JurisdictionError says what is wrong and where."""
    return parse_as(Deployment, text, source)


def load_file(path: Path) -> Deployment:
    """Read and validate a whole jurisdiction file."""
    return load_file_as(Deployment, path)
