"""The CloudEvents 1.0 envelope (structured mode) every careroute event travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE = "application/cloudevents+json"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Envelope(BaseModel):
    """A CloudEvent whose `data` is the JSON form of one topic's payload model."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = "1.0"
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    source: str
    subject: str
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: str = "application/json"
    data: dict[str, Any]
    correlationid: str
    causationid: str | None = None
    traceparent: str | None = None

    def to_bytes(self) -> bytes:
        """The structured-mode JSON value of this event."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse a structured-mode JSON value; raises pydantic.ValidationError when it is not one."""
        return cls.model_validate_json(raw)


def new_event(
    type_: str,
    service: str,
    subject: str,
    data: BaseModel,
    *,
    cause: Envelope | None = None,
    correlationid: str | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Wrap a payload for `type_`, continuing the correlation of the event that caused it (a new
    id unless `event_id` gives the one every repeat of this event must carry)."""
    event_id = event_id or uuid.uuid4()
    correlation = correlationid or (cause.correlationid if cause else str(event_id))
    return Envelope(
        id=event_id,
        type=type_,
        source=f"/services/{service}",
        subject=subject,
        data=data.model_dump(mode="json"),
        correlationid=correlation,
        causationid=str(cause.id) if cause else None,
    )
