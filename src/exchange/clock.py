"""The injectable clock: every timestamp the engine writes comes from here; tests move it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock for tests: stands still until moved."""

    def __init__(self, start: datetime) -> None:
        assert start.tzinfo is not None
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        assert delta >= timedelta(0)
        self._now += delta


def to_rfc3339(moment: datetime) -> str:
    assert moment.tzinfo is not None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
