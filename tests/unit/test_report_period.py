"""A report's period: made aware, ordered, bounded, widened to whole hours."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.audit import period
from shared.domain_errors import Invalid

NOV = datetime(2026, 11, 2, tzinfo=UTC)


def test_a_period_without_offsets_is_utc():
    since, until = period.checked(datetime(2026, 11, 2), datetime(2026, 11, 3))
    assert since == NOV and until == NOV + timedelta(days=1)
    assert period.checked(None, None) == (None, None)


@pytest.mark.parametrize(
    ("since", "until", "required", "code"),
    [
        (NOV, NOV, False, "invalid_range"),
        (NOV + timedelta(days=1), NOV, False, "invalid_range"),
        (NOV, NOV + timedelta(days=367), False, "period_too_long"),
        (datetime(1, 1, 1, tzinfo=UTC), NOV, False, "period_out_of_range"),
        (NOV, datetime(9999, 12, 31, tzinfo=UTC), False, "period_out_of_range"),
        (None, NOV, True, "period_required"),
        (NOV, None, True, "period_required"),
    ],
)
def test_a_period_that_is_not_one_is_refused_with_a_code(since, until, required, code):
    with pytest.raises(Invalid) as refused:
        period.checked(since, until, required)
    assert refused.value.code == code


def test_a_period_widens_to_whole_utc_hours():
    half = timezone(timedelta(hours=5, minutes=30))
    since = datetime(2026, 11, 2, 10, 20, tzinfo=UTC)
    assert period.whole_hours(since, since + timedelta(minutes=30)) == (
        NOV + timedelta(hours=10),
        NOV + timedelta(hours=11),
    )
    assert period.whole_hours(NOV, NOV + timedelta(hours=2)) == (NOV, NOV + timedelta(hours=2))
    ist = datetime(2026, 11, 2, 5, 30, tzinfo=half)  # 00:00Z
    assert period.whole_hours(ist, ist + timedelta(hours=1)) == (NOV, NOV + timedelta(hours=1))
