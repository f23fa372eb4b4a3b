"""Schema pieces every domain shares: strict inputs, ids, pages."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_:-]{0,63}$"
# Ids the exchange derives ("<hold>.void", "exchange.fx_position.CNY") have dots; refs admit them.
REFERENCE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"

ClientId = Annotated[str, Field(pattern=CLIENT_ID_PATTERN, examples=["t-2026-000123"])]
Ref = Annotated[str, Field(pattern=REFERENCE_ID_PATTERN, examples=["acc-buyer-cny"])]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lower-case hex")]


class Input(BaseModel):
    """A request body: unknown fields are an error (which also stops mass assignment)."""

    model_config = ConfigDict(extra="forbid")
