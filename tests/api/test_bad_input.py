"""Bad input answers a 4xx problem naming what is wrong, and writes nothing to the journal."""

from __future__ import annotations

import pytest

from tests.conftest import Ledger, cny, uid

PROBLEM = "application/problem+json"


@pytest.fixture
async def accounts(ledger: Ledger) -> tuple[str, str, str]:
    return await ledger.funded("100.00"), await ledger.account(), await ledger.account("USD")


async def journal_entries(client, operator) -> int:
    response = await client.get("/v1/ledger/verify", headers=operator.headers)
    assert response.json()["ok"] is True
    return int(response.json()["entries"])


def transfer(debit: str, credit: str, **changes) -> dict:
    return {
        "id": uid(),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": cny("1.00"),
        "code": "test",
        **changes,
    }


BAD_TRANSFERS = [
    # (name, changes to a valid body, expected status, expected code, field named)
    ("malformed id", {"id": "bad id with spaces"}, 422, "validation_failed", "id"),
    ("id with a dot", {"id": "a.b"}, 422, "validation_failed", "id"),
    (
        "unknown debit account",
        {"debit_account_id": "no-such-account"},
        422,
        "debit_account_not_found",
        "debit_account_id",
    ),
    ("zero amount", {"amount": cny("0.00")}, 422, "validation_failed", "amount"),
    ("negative amount", {"amount": cny("-1.00")}, 422, "validation_failed", "amount"),
    ("fractional cent", {"amount": cny("1.001")}, 422, "validation_failed", "amount"),
    (
        "amount past 2^63",
        {"amount": cny("92233720368547758.08")},
        422,
        "validation_failed",
        "amount",
    ),
    (
        "amount as a JSON number",
        {"amount": {"amount": 1.5, "currency": "CNY"}},
        422,
        "validation_failed",
        "amount.amount",
    ),
    ("amount in exponent form", {"amount": cny("1e3")}, 422, "validation_failed", "amount"),
    (
        "unknown currency",
        {"amount": {"amount": "1.00", "currency": "ABC"}},
        422,
        "validation_failed",
        "amount.currency",
    ),
    (
        "lower-case currency",
        {"amount": {"amount": "1.00", "currency": "cny"}},
        422,
        "validation_failed",
        "amount.currency",
    ),
    ("wrong type for pending", {"pending": "maybe"}, 422, "validation_failed", "pending"),
    ("timeout without pending", {"timeout_s": 10}, 422, "validation_failed", ""),
    ("unknown field", {"colour": "red"}, 422, "validation_failed", "colour"),
    ("bad code", {"code": "Not A Code"}, 422, "validation_failed", "code"),
]


@pytest.mark.parametrize(
    ("name", "changes", "status", "code", "field"),
    BAD_TRANSFERS,
    ids=[case[0] for case in BAD_TRANSFERS],
)
async def test_bad_transfer_is_refused_and_writes_nothing(
    client, operator, accounts, name, changes, status, code, field
):
    source, target, _ = accounts
    before = await journal_entries(client, operator)
    response = await client.post(
        "/v1/ledger/transfers", json=transfer(source, target, **changes), headers=operator.headers
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status and problem["type"] and problem["title"]
    assert problem["detail"]
    named = [e.get("field") for e in problem.get("errors", [])] + [
        f for e in problem.get("errors", []) for f in e.get("fields", [])
    ]
    assert any(n is not None and n.startswith(field) for n in named), problem
    assert await journal_entries(client, operator) == before


async def test_currency_mismatch_is_refused(client, operator, accounts):
    source, _, usd = accounts
    before = await journal_entries(client, operator)
    response = await client.post(
        "/v1/ledger/transfers", json=transfer(source, usd), headers=operator.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "currency_mismatch"
    assert await journal_entries(client, operator) == before


async def test_same_account_on_both_sides_is_refused(client, operator, accounts):
    source = accounts[0]
    response = await client.post(
        "/v1/ledger/transfers", json=transfer(source, source), headers=operator.headers
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"id": ', "application/json", 400, "malformed_json"),
        (b"not json at all", "application/json", 400, "malformed_json"),
        (b"[]", "application/json", 422, "validation_failed"),
        (b"id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"{}", "text/plain", 415, "unsupported_media_type"),
    ],
)
async def test_malformed_bodies_and_content_types_are_problems(
    client, operator, content, content_type, status, code
):
    before = await journal_entries(client, operator)
    response = await client.post(
        "/v1/ledger/transfers",
        content=content,
        headers={**operator.headers, "Content-Type": content_type},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code
    assert await journal_entries(client, operator) == before


async def test_huge_body_is_refused_with_413(client, operator, settings):
    before = await journal_entries(client, operator)
    huge = b'{"transfers": [' + b" " * (settings.body_bytes_max + 1) + b"]}"
    response = await client.post(
        "/v1/ledger/transfers/batch",
        content=huge,
        headers={**operator.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert await journal_entries(client, operator) == before


async def test_streamed_body_over_the_limit_is_refused_with_413(client, operator, settings):
    async def chunks():
        yield b'{"transfers": ['
        for _ in range(settings.body_bytes_max // 65536 + 2):
            yield b" " * 65536
        yield b"]}"

    response = await client.post(
        "/v1/ledger/transfers/batch",
        content=chunks(),
        headers={**operator.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_batch_over_8190_transfers_is_refused(client, operator, accounts):
    source, target, _ = accounts
    items = [transfer(source, target) for _ in range(8191)]
    response = await client.post(
        "/v1/ledger/transfers/batch", json={"transfers": items}, headers=operator.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "transfers"


async def test_unknown_route_and_wrong_method_are_problems(client, operator):
    missing = await client.get("/v1/nowhere", headers=operator.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    wrong = await client.delete("/v1/ledger/transfers", headers=operator.headers)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


async def test_malformed_path_id_and_query_are_validation_problems(client, operator):
    response = await client.get("/v1/ledger/accounts/has%20space", headers=operator.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.account_id"
    naive = await client.get(
        "/v1/ledger/accounts/x/balance", params={"as_of": "yesterday"}, headers=operator.headers
    )
    assert naive.status_code == 422
    limit = await client.get("/v1/ledger/accounts", params={"limit": 0}, headers=operator.headers)
    assert limit.status_code == 422 and limit.json()["errors"][0]["field"] == "query.limit"


async def test_bad_account_input_names_the_field(client, operator):
    cases = [
        ({"currency": "XYZ", "code": "available"}, "currency"),
        ({"currency": "CNY", "code": "piggy_bank"}, "code"),
        (
            {
                "currency": "CNY",
                "code": "available",
                "flags": {
                    "debits_must_not_exceed_credits": True,
                    "credits_must_not_exceed_debits": True,
                },
            },
            "flags",
        ),
        ({"currency": "CNY", "code": "available", "owner": {"type": "party"}}, "owner"),
    ]
    for body, field in cases:
        response = await client.post("/v1/ledger/accounts", json=body, headers=operator.headers)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"].startswith(field), response.json()
    unknown_party = await client.post(
        "/v1/ledger/accounts",
        headers=operator.headers,
        json={"currency": "CNY", "code": "available", "owner": {"type": "party", "id": "nobody"}},
    )
    assert unknown_party.status_code == 404


async def test_bad_idempotency_key_is_refused(client, operator):
    response = await client.post(
        "/v1/ledger/accounts",
        json={"currency": "CNY", "code": "available"},
        headers={**operator.headers, "Idempotency-Key": "k" * 200},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
