"""A report's period, checked once for the API and the command line: aware, ordered, bounded. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain_errors import Invalid

# A report reads every event of its period into memory: a longer one is refused, not attempted.
MAX_PERIOD = timedelta(days=366)
# Far outside any trail, and far enough from datetime's own ends that a time zone never overflows.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def aware(moment: datetime | None) -> datetime | None:
    """A moment with its offset (one given without is UTC)."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def checked(
    since: datetime | None, until: datetime | None, required: bool = False
) -> tuple[datetime | None, datetime | None]:
    """The period `[since, until)` made aware; Invalid (with its code) when it is missing though
    `required`, out of range, empty or reversed, or longer than MAX_PERIOD."""
    since, until = aware(since), aware(until)
    if required and (since is None or until is None):
        raise Invalid("this report needs a period: give both from and to", "period_required")
    for moment in (since, until):
        if moment is not None and not EARLIEST <= moment <= LATEST:
            raise Invalid(
                f"{moment.isoformat()} is outside {EARLIEST.year}-{LATEST.year}", "period_out_of_range"
            )
    if since is not None and until is not None:
        if since >= until:
            raise Invalid("from must be before to", "invalid_range")
        if until - since > MAX_PERIOD:
            raise Invalid(f"a report's period may be at most {MAX_PERIOD.days} days", "period_too_long")
    return since, until


def whole_hours(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The period widened to whole UTC hours, so no hour of the week is counted for a few minutes."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = until.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start, end if end == until else end + timedelta(hours=1)
