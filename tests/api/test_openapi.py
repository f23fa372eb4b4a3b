"""openapi/openapi.json is what the app generates: regenerate it with `make openapi`."""

from __future__ import annotations

from pathlib import Path

from exchange.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app(app):
    assert COMMITTED.exists(), "run `make openapi`"
    assert COMMITTED.read_text(encoding="utf-8") == render(app), (
        "openapi/openapi.json is stale: run `make openapi` and commit it"
    )


def test_every_route_declares_its_problems(app):
    document = app.openapi()
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            assert "401" in operation["responses"], (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in operation["responses"], (method, path)
