"""Working days of the exchange, in Shanghai, for public-notice (公示) periods: weekends and public
holidays are off, make-up weekend days (调休) are worked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["EXCHANGE_TZ", "WORKING_DAYS_MAX", "WorkingCalendar"]

EXCHANGE_TZ = ZoneInfo("Asia/Shanghai")
WORKING_DAYS_MAX = 1_000  # about four years: far past any notice period or refund deadline
_SATURDAY = 5
_DAY = timedelta(days=1)


def _weekdays_before(day: date) -> int:
    """Monday-to-Friday days from an arbitrary Monday epoch up to, not including, `day`."""
    ordinal = day.toordinal() - 1  # date(1, 1, 1), ordinal 1, is a Monday
    weeks, rest = divmod(ordinal, 7)
    return weeks * 5 + min(rest, 5)


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    holidays: frozenset[date] = frozenset()  # days not worked (public holidays)
    working_weekends: frozenset[date] = frozenset()  # weekend days worked (调休 make-up days)

    def __post_init__(self) -> None:
        assert all(day.weekday() >= _SATURDAY for day in self.working_weekends), (
            self.working_weekends
        )
        assert not self.holidays & self.working_weekends, self.holidays & self.working_weekends

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day in self.working_weekends or day.weekday() < _SATURDAY

    def add_working_days(self, start: date, count: int) -> date:
        """The `count`-th working day after `start` (`start` itself is not counted)."""
        assert 1 <= count <= WORKING_DAYS_MAX, count
        day = start
        # Every 7 days hold 5 weekdays and each holiday takes at most one of them.
        for _ in range((count + len(self.holidays) + 1) * 7):
            day += _DAY
            if self.is_working_day(day):
                count -= 1
                if count == 0:
                    return day
        raise AssertionError("a calendar without enough working days")

    def notice_ends_at(self, published_at: datetime, working_days: int) -> datetime:
        """The end of a notice of `working_days` full working days after the day of publication
        (in Shanghai): midnight after the last of them, as an aware UTC datetime."""
        assert published_at.tzinfo is not None, published_at
        published_day = published_at.astimezone(EXCHANGE_TZ).date()
        last_day = self.add_working_days(published_day, working_days)
        return datetime.combine(last_day + _DAY, time(0), tzinfo=EXCHANGE_TZ).astimezone(UTC)

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after the day of `start` (in Shanghai) that have wholly passed by `end`:
        the days strictly between their local dates. So a notice that ends at
        `notice_ends_at(p, n)` has run `working_days_between(p, notice_ends_at(p, n)) == n`."""
        assert start.tzinfo is not None and end.tzinfo is not None, (start, end)
        first = start.astimezone(EXCHANGE_TZ).date() + _DAY
        stop = end.astimezone(EXCHANGE_TZ).date()
        if stop <= first:
            return 0

        def inside(day: date) -> bool:
            return first <= day < stop

        weekdays = _weekdays_before(stop) - _weekdays_before(first)
        holidays_off = sum(1 for day in self.holidays if inside(day) and day.weekday() < _SATURDAY)
        made_up = sum(1 for day in self.working_weekends if inside(day))
        return weekdays - holidays_off + made_up
