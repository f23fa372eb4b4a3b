"""RFC 9457 problem+json for every error: domain refusals, payload validation, unknown routes,
wrong methods, malformed or oversized bodies, wrong content types, and (as a bug) anything else."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exchange.errors import DomainError, problem_body
from exchange.web import audit_refused_request

log = structlog.get_logger(__name__)
PROBLEM_MEDIA_TYPE = "application/problem+json"
_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("body_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, rest = parts[0], parts[1:]
        return ".".join(rest) if where == "body" and rest else ".".join([where, *rest])
    return ".".join(parts)


async def _domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    await audit_refused_request(request, error.status, error.code, error.detail)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return problem_response(error.problem(request.url.path), headers)


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    details = error.errors()
    if any(d.get("type") == "json_invalid" for d in details):
        await audit_refused_request(request, 400, "malformed_json", "malformed JSON body")
        return problem_response(
            problem_body(
                400,
                "malformed_json",
                "Malformed JSON",
                "the request body is not valid JSON",
                request.url.path,
            )
        )
    errors = [
        {
            "field": _field(tuple(d.get("loc", ()))),
            "code": d.get("type", "invalid"),
            "detail": str(d.get("msg", "")),
        }
        for d in details
    ]
    summary = "; ".join(f"{e['field']}: {e['detail']}" for e in errors)
    await audit_refused_request(request, 422, "validation_failed", summary)
    body = problem_body(
        422,
        "validation_failed",
        "Validation failed",
        "; ".join(f"{e['field']}: {e['detail']}" for e in errors)[:2000],
        request.url.path,
    )
    body["errors"] = errors
    return problem_response(body)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    code, title = _HTTP_CODES.get(error.status_code, ("http_error", "HTTP error"))
    detail = error.detail if isinstance(error.detail, str) else title
    if error.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}"
    return problem_response(
        problem_body(error.status_code, code, title, detail, request.url.path),
        dict(error.headers) if error.headers else None,
    )


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unhandled_error", path=request.url.path)
    return problem_response(
        problem_body(
            500,
            "internal_error",
            "Internal error",
            "the server failed; the request id identifies it in the logs",
            request.url.path,
        )
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class BodyGuard:
    """Refuse, before the app reads them, bodies over `body_bytes_max` (413) and bodies that are
    not JSON (415); count streamed bodies that carry no Content-Length as they arrive."""

    def __init__(
        self, app: ASGIApp, body_bytes_max: int, raw_bodies: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.body_bytes_max = body_bytes_max
        self.raw_bodies = raw_bodies or {}  # path → its own limit; any media type (uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        has_body = (length not in (None, "0")) or "transfer-encoding" in headers
        raw_limit = self.raw_bodies.get(scope["path"])
        limit = raw_limit or self.body_bytes_max
        refusal = self._refusal(headers, length, has_body, limit, raw_limit is None)
        if refusal is not None:
            await problem_response(refusal)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"body over {limit} bytes")
            return message

        await self.app(scope, counted, send)

    @staticmethod
    def _refusal(
        headers: dict[str, str], length: str | None, has_body: bool, limit: int, json_only: bool
    ) -> dict[str, Any] | None:
        if length is not None and (not length.isdigit() or int(length) > limit):
            return problem_body(
                413,
                "body_too_large",
                "Request body too large",
                f"the body must be at most {limit} bytes",
            )
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = content_type == "application/json" or content_type.endswith("+json")
        if has_body and json_only and not is_json:
            return problem_body(
                415,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as application/json",
            )
        return None
