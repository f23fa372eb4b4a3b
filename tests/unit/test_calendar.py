"""Worked examples of the working calendar, counted by hand on a calendar configured like China's
2026 Mid-Autumn and National Day holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from exchange.listings.calendar import EXCHANGE_TZ, WorkingCalendar

PLAIN = WorkingCalendar()
# Mid-Autumn Fri 25 Sep; National Day Thu 1 to Wed 7 Oct (3-4 Oct are a weekend anyway);
# made up on Sun 20 Sep and Sat 10 Oct.
GOLDEN_WEEK_2026 = WorkingCalendar(
    holidays=frozenset(
        {
            date(2026, 9, 25),
            date(2026, 10, 1),
            date(2026, 10, 2),
            date(2026, 10, 5),
            date(2026, 10, 6),
            date(2026, 10, 7),
        }
    ),
    working_weekends=frozenset({date(2026, 9, 20), date(2026, 10, 10)}),
)
FRIDAY = date(2026, 9, 18)


def shanghai(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=EXCHANGE_TZ)


def test_weekends_are_skipped() -> None:
    assert not PLAIN.is_working_day(date(2026, 3, 7))  # Saturday
    assert PLAIN.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Fri -> Mon
    assert PLAIN.add_working_days(date(2026, 3, 6), 5) == date(2026, 3, 13)
    assert PLAIN.add_working_days(date(2026, 3, 7), 1) == date(2026, 3, 9)  # from a Saturday


def test_holidays_are_skipped() -> None:
    calendar = WorkingCalendar(holidays=frozenset({date(2026, 3, 9)}))
    assert not calendar.is_working_day(date(2026, 3, 9))
    assert calendar.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 10)
    assert GOLDEN_WEEK_2026.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)


def test_a_working_weekend_is_counted() -> None:
    assert GOLDEN_WEEK_2026.is_working_day(date(2026, 10, 10))  # Saturday
    assert GOLDEN_WEEK_2026.add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)
    assert GOLDEN_WEEK_2026.add_working_days(FRIDAY, 1) == date(2026, 9, 20)  # Sunday
    assert PLAIN.add_working_days(FRIDAY, 1) == date(2026, 9, 21)


def test_a_twenty_day_notice_over_national_day_ends_at_local_midnight() -> None:
    # After Fri 18 Sep: Sun 20 (1); 21-24 Sep (2-5); 28-30 Sep (6-8); 8-10 Oct (9-11);
    # 12-16 Oct (12-16); 19-22 Oct (17-20). It ends as Fri 23 Oct begins in Shanghai.
    published_at = shanghai(date(2026, 9, 18), 10, 30)
    ends_at = GOLDEN_WEEK_2026.notice_ends_at(published_at, 20)
    assert ends_at == shanghai(date(2026, 10, 23))
    assert ends_at == datetime(2026, 10, 22, 16, 0, tzinfo=UTC)
    assert ends_at.tzinfo is UTC
    assert GOLDEN_WEEK_2026.add_working_days(FRIDAY, 20) == date(2026, 10, 22)
    # Without the holidays, 20 working days after a Friday end on the fourth Friday after it.
    assert PLAIN.notice_ends_at(published_at, 20) == datetime(2026, 10, 16, 16, 0, tzinfo=UTC)


def test_the_day_of_publication_is_the_day_in_shanghai() -> None:
    # 17:00Z on Thursday is 01:00 on Friday in Shanghai; 15:59Z on Friday is still Friday there.
    thursday_night_utc = datetime(2026, 9, 17, 17, 0, tzinfo=UTC)
    friday_late_utc = datetime(2026, 9, 18, 15, 59, tzinfo=UTC)
    expected = datetime(2026, 10, 22, 16, 0, tzinfo=UTC)
    assert GOLDEN_WEEK_2026.notice_ends_at(thursday_night_utc, 20) == expected
    assert GOLDEN_WEEK_2026.notice_ends_at(friday_late_utc, 20) == expected
    saturday = datetime(2026, 9, 18, 16, 0, tzinfo=UTC)  # midnight in Shanghai
    assert GOLDEN_WEEK_2026.notice_ends_at(saturday, 1) == shanghai(date(2026, 9, 21))


def test_working_days_between_counts_a_notice_back_to_its_length() -> None:
    published = [shanghai(date(2026, 9, 14)), shanghai(date(2026, 9, 18), 10, 30)]
    published += [shanghai(date(2026, 9, 30), 23, 59), shanghai(date(2026, 10, 3), 12, 0)]
    for published_at in published:
        for days in range(1, 41):
            ends_at = GOLDEN_WEEK_2026.notice_ends_at(published_at, days)
            assert GOLDEN_WEEK_2026.working_days_between(published_at, ends_at) == days
            just_before = ends_at - timedelta(microseconds=1)
            assert GOLDEN_WEEK_2026.working_days_between(published_at, just_before) == days - 1


def test_working_days_between_agrees_with_a_count_by_day() -> None:
    first = date(2026, 9, 10)
    for start_offset in range(40):
        start_day = first + timedelta(days=start_offset)
        for length in range(-2, 40):
            end_day = start_day + timedelta(days=length)
            by_day = sum(
                1
                for n in range(1, length)
                if GOLDEN_WEEK_2026.is_working_day(start_day + timedelta(days=n))
            )
            start = shanghai(start_day, 9)
            end = shanghai(end_day, 18)
            assert GOLDEN_WEEK_2026.working_days_between(start, end) == by_day


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(AssertionError):
        PLAIN.notice_ends_at(datetime(2026, 9, 18, 10, 0), 20)
    with pytest.raises(AssertionError):
        PLAIN.working_days_between(datetime(2026, 9, 18), datetime(2026, 10, 18, tzinfo=UTC))
