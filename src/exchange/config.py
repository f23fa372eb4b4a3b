"""Settings from the environment: one `Settings`, env prefix `EXCHANGE_` besides `DATABASE_URL`."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///./exchange.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    database_url: str = Field(
        default=EMBEDDED_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "EXCHANGE_DATABASE_URL"),
        description="SQLAlchemy async URL; unset means a SQLite file in the working directory.",
    )
    database_read_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_READ_URL", "EXCHANGE_DATABASE_READ_URL"),
        description="Optional replica for audit reads.",
    )
    db_pool_size: int = Field(default=20, ge=1, le=200)
    db_retry_attempts_max: int = Field(default=8, ge=1, le=50)
    log_level: str = "INFO"
    log_json: bool = True
    body_bytes_max: int = Field(default=4 * 1024 * 1024, ge=1024)
    auth_cache_ttl_s: float = Field(default=2.0, ge=0)
    run_worker: bool = Field(
        default=True, description="Run the hold-expiry loop inside each API process."
    )
    worker_interval_s: float = Field(default=1.0, gt=0)
    docking_refresh_interval_s: float = Field(
        default=0.5, gt=0, description="How often each process applies new outbox events."
    )
    evidence_dir: str = Field(
        default="./var/evidence", description="The content-addressed store of evidence files."
    )
    evidence_bytes_max: int = Field(default=20 * 1024 * 1024, ge=1024)
    notice_working_days_min: int = Field(
        default=20, ge=1, description="Public notice, at least (state-owned and public assets)."
    )
    extension_working_days_min: int = Field(default=5, ge=1)
    relist_price_floor_pct: int = Field(
        default=90,
        ge=1,
        le=100,
        description="A relisting below this % of the appraised value needs an operator's approval.",
    )
    holidays: list[date] = Field(
        default_factory=list, description="Public holidays on weekdays (JSON list of dates)."
    )
    working_weekends: list[date] = Field(
        default_factory=list, description="Weekend days that are worked (调休), JSON list."
    )
    contract_deadline_working_days: int = Field(
        default=10, ge=1, description="Working days after the award to sign the contract."
    )
    forfeit_exchange_share_bp: int = Field(
        default=2_000, ge=0, le=10_000, description="The exchange's share of a forfeited deposit."
    )
    fee_bands: list[tuple[int, int]] | None = Field(
        default=None,
        description="The exchange fee's progressive bands, JSON [[from_price, rate_bp], ...] in "
        "minor units; unset: the default schedule (1.5% / 1% / 0.5% / 0.2%).",
    )
    fee_minimum: int | None = Field(default=None, ge=0, description="Minor units.")
    fee_maximum: int | None = Field(default=None, ge=0, description="Minor units.")
    migrations_dir: str | None = Field(
        default=None, description="Alembic scripts; default: migrations/ beside src/."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
