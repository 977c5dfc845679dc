"""The whole jurisdiction file: the shared part with each service's own section, validated at once."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, model_validator

from services.intake.rules import Triage
from services.matching.rules import Matching
from services.notify.rules import Watch
from shared.jurisdiction import Jurisdiction, load_file_as, parse_as


class Deployment(Jurisdiction):
    """A whole deployment with intake's triage rules, matching's rules and notify's timers validated
    in place."""

    # Errors name the document as they always have, whoever composes it.
    model_config = ConfigDict(title="Jurisdiction")

    triage: Triage
    matching: Matching | None = None
    watch: Watch | None = None

    @model_validator(mode="after")
    def _rules_name_known_psaps(self) -> Deployment:
        psaps = {p.id for p in self.psaps}
        for psap_id in self.triage.per_psap:
            if psap_id not in psaps:
                raise ValueError(f"triage.per_psap names unknown psap {psap_id}")
        return self


def parse(text: str, source: str = "<string>") -> Deployment:
    """Validate a whole jurisdiction document; JurisdictionError says what is wrong and where."""
    return parse_as(Deployment, text, source)


def load_file(path: Path) -> Deployment:
    """Read and validate a whole jurisdiction file."""
    return load_file_as(Deployment, path)
