"""Domain errors with a status and a stable code; one handler renders them as RFC 9457 problem+json.

Operating errors (bad input, insufficient funds, a resolved hold) are raised as `DomainError`s and
answered with a 4xx. Broken invariants are `assert`ed and are never turned into a 4xx.
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_BASE = "https://errors.exchange.example/"


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body = problem_body(self.status, self.code, self.title, self.detail, instance)
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def problem_body(
    status: int, code: str, title: str, detail: str, instance: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    return body


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Unprocessable(DomainError):
    status = 422
    code = "unprocessable"
    title = "Unprocessable request"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


def check_version(what: str, current: int, if_match: int | None) -> None:
    """Optimistic concurrency: refuse (412) a change sent for another version than `current`."""
    if if_match is not None and if_match != current:
        raise PreconditionFailed(
            f"{what} is at version {current}, not {if_match}", current_version=current
        )


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with another request"


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"
    title = "Invalid pagination cursor"
