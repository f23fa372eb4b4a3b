"""The OpenAPI document as it is committed in openapi/openapi.json (stable key order)."""

from __future__ import annotations

import json

from fastapi import FastAPI


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
