"""The ledger through its REST API: accounts, transfers, holds, batches, balances, FX, verify."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.conftest import Ledger, cny, uid


async def test_account_is_created_with_zero_totals_and_replays_by_id(client, operator):
    body = {
        "id": uid("acc"),
        "currency": "JPY",
        "code": "escrow",
        "owner": {"type": "exchange"},
        "flags": {"credits_must_not_exceed_debits": True},
    }
    first = await client.post("/v1/ledger/accounts", json=body, headers=operator.headers)
    assert first.status_code == 201, first.text
    account = first.json()
    assert account["debits_posted"] == {"amount": "0", "currency": "JPY"}
    assert account["flags"]["credits_must_not_exceed_debits"] is True
    again = await client.post("/v1/ledger/accounts", json=body, headers=operator.headers)
    assert again.status_code == 200
    assert again.json() == account
    changed = await client.post(
        "/v1/ledger/accounts", json={**body, "currency": "USD"}, headers=operator.headers
    )
    assert changed.status_code == 409
    assert changed.json()["code"] == "exists_with_different_fields"
    assert changed.json()["errors"] == [{"field": "currency", "code": "differs"}]


async def test_transfer_moves_posted_totals_on_both_sides(ledger: Ledger):
    source = await ledger.funded("100.00")
    target = await ledger.account()
    result = await ledger.transfer(source, target, "40.25")
    assert result["status"] == "posted" and result["kind"] == "single"
    assert (await ledger.get_account(source))["debits_posted"] == cny("40.25")
    assert (await ledger.get_account(target))["credits_posted"] == cny("40.25")


async def test_same_transfer_id_replays_with_200_and_conflicts_when_fields_differ(
    client, ledger: Ledger, operator
):
    source = await ledger.funded("100.00")
    target = await ledger.account()
    body = {
        "id": uid("tr"),
        "debit_account_id": source,
        "credit_account_id": target,
        "amount": cny("10.00"),
        "code": "payment",
        "reference": "deal-1",
    }
    first = await client.post("/v1/ledger/transfers", json=body, headers=operator.headers)
    replay = await client.post("/v1/ledger/transfers", json=body, headers=operator.headers)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert (await ledger.get_account(source))["debits_posted"] == cny("10.00")
    conflict = await client.post(
        "/v1/ledger/transfers",
        json={**body, "amount": cny("11.00"), "code": "other"},
        headers=operator.headers,
    )
    assert conflict.status_code == 409
    problem = conflict.json()
    assert problem["code"] == "exists_with_different_fields"
    assert problem["errors"][0]["fields"] == ["amount", "code"]


async def test_limit_counts_pending_holds_and_refusal_writes_nothing(ledger: Ledger):
    source = await ledger.funded("100.00")
    target = await ledger.account()
    await ledger.transfer(source, target, "70.00", pending=True)
    refused = await ledger.transfer(source, target, "30.01", expect=409)
    assert refused["code"] == "exceeds_credits"
    account = await ledger.get_account(source)
    assert account["debits_pending"] == cny("70.00")
    assert account["debits_posted"] == cny("0.00")
    await ledger.transfer(source, target, "30.00")


async def test_hold_posts_partially_and_releases_the_rest(client, ledger: Ledger, operator):
    source = await ledger.funded("100.00")
    target = await ledger.account()
    hold = await ledger.transfer(source, target, "60.00", pending=True)
    assert hold["status"] == "pending"
    posted = await client.post(
        f"/v1/ledger/transfers/{hold['id']}/post",
        json={"amount": cny("45.00")},
        headers=operator.headers,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["pending_id"] == hold["id"]
    assert posted.json()["amount"] == cny("45.00")
    account = await ledger.get_account(source)
    assert account["debits_pending"] == cny("0.00")
    assert account["debits_posted"] == cny("45.00")
    read = await client.get(f"/v1/ledger/transfers/{hold['id']}", headers=operator.headers)
    assert read.json()["status"] == "posted"
    assert read.json()["resolved_by"] == posted.json()["id"]
    same = await client.post(
        f"/v1/ledger/transfers/{hold['id']}/post",
        json={"amount": cny("45.00")},
        headers=operator.headers,
    )
    assert same.status_code == 200 and same.json() == posted.json()
    full = await client.post(f"/v1/ledger/transfers/{hold['id']}/post", headers=operator.headers)
    assert full.status_code == 409
    assert full.json()["code"] == "exists_with_different_fields"


async def test_hold_resolves_at_most_once(client, ledger: Ledger, operator):
    source = await ledger.funded("100.00")
    hold = await ledger.transfer(source, await ledger.account(), "10.00", pending=True)
    void = await client.post(f"/v1/ledger/transfers/{hold['id']}/void", headers=operator.headers)
    assert void.status_code == 201 and void.json()["status"] == "voided"
    again = await client.post(f"/v1/ledger/transfers/{hold['id']}/void", headers=operator.headers)
    assert again.status_code == 200 and again.json() == void.json()
    post = await client.post(f"/v1/ledger/transfers/{hold['id']}/post", headers=operator.headers)
    assert post.status_code == 409
    assert post.json()["code"] == "pending_transfer_already_voided"
    assert (await ledger.get_account(source))["debits_pending"] == cny("0.00")


async def test_post_more_than_held_is_refused(client, ledger: Ledger, operator):
    source = await ledger.funded("100.00")
    hold = await ledger.transfer(source, await ledger.account(), "10.00", pending=True)
    response = await client.post(
        f"/v1/ledger/transfers/{hold['id']}/post",
        json={"amount": cny("10.01")},
        headers=operator.headers,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "exceeds_pending_amount"


async def test_resolving_a_posted_transfer_is_refused(client, ledger: Ledger, operator):
    source = await ledger.funded("10.00")
    plain = await ledger.transfer(source, await ledger.account(), "1.00")
    response = await client.post(
        f"/v1/ledger/transfers/{plain['id']}/void", headers=operator.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] == "pending_transfer_not_pending"
    missing = await client.post("/v1/ledger/transfers/no-such-hold/post", headers=operator.headers)
    assert missing.status_code == 404


async def test_expired_hold_is_voided_on_read_and_cannot_be_posted(
    client, ledger: Ledger, operator, clock
):
    source = await ledger.funded("100.00")
    hold = await ledger.transfer(
        source, await ledger.account(), "25.00", pending=True, timeout_s=60
    )
    assert hold["expires_at"] is not None
    clock.advance(timedelta(seconds=61))
    read = await client.get(f"/v1/ledger/transfers/{hold['id']}", headers=operator.headers)
    assert read.json()["status"] == "voided"
    assert (await ledger.get_account(source))["debits_pending"] == cny("0.00")
    post = await client.post(f"/v1/ledger/transfers/{hold['id']}/post", headers=operator.headers)
    assert post.status_code == 409
    assert post.json()["code"] == "pending_transfer_expired"


async def test_worker_expires_due_holds(ledger: Ledger, db, clock):
    from exchange.worker import expire_holds_once

    source = await ledger.funded("100.00")
    hold = await ledger.transfer(source, await ledger.account(), "5.00", pending=True, timeout_s=30)
    clock.advance(timedelta(seconds=31))
    assert await expire_holds_once(db, clock) >= 1
    assert (await ledger.get_account(source))["debits_pending"] == cny("0.00")
    view = await ledger.client.get(f"/v1/ledger/transfers/{hold['id']}", headers=ledger.key.headers)
    assert view.json()["status"] == "voided"
    assert view.json()["resolved_by"] == f"{hold['id']}.void"


async def test_batch_applies_all_transfers_in_order(client, ledger: Ledger, operator):
    a = await ledger.funded("10.00")
    b = await ledger.account(limit=True)
    c = await ledger.account()
    transfers = [
        {
            "id": uid(),
            "debit_account_id": a,
            "credit_account_id": b,
            "amount": cny("10.00"),
            "code": "leg",
        },
        {
            "id": uid(),
            "debit_account_id": b,
            "credit_account_id": c,
            "amount": cny("10.00"),
            "code": "leg",
        },
    ]
    response = await client.post(
        "/v1/ledger/transfers/batch", json={"transfers": transfers}, headers=operator.headers
    )
    assert response.status_code == 201, response.text
    assert [t["id"] for t in response.json()["transfers"]] == [t["id"] for t in transfers]
    assert (await ledger.get_account(c))["credits_posted"] == cny("10.00")
    replay = await client.post(
        "/v1/ledger/transfers/batch", json={"transfers": transfers}, headers=operator.headers
    )
    assert replay.status_code == 200


async def test_batch_is_all_or_nothing_and_names_the_failing_transfer(
    client, ledger: Ledger, operator
):
    a = await ledger.funded("10.00")
    b = await ledger.account(limit=True)
    usd = await ledger.account("USD")
    before = await client.get("/v1/ledger/verify", headers=operator.headers)
    transfers = [
        {
            "id": uid(),
            "debit_account_id": a,
            "credit_account_id": b,
            "amount": cny("5.00"),
            "code": "leg",
        },
        {
            "id": uid(),
            "debit_account_id": b,
            "credit_account_id": a,
            "amount": cny("6.00"),
            "code": "leg",
        },
        {
            "id": uid(),
            "debit_account_id": a,
            "credit_account_id": usd,
            "amount": cny("1.00"),
            "code": "leg",
        },
    ]
    response = await client.post(
        "/v1/ledger/transfers/batch", json={"transfers": transfers}, headers=operator.headers
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "transfers_refused"
    assert [(e["index"], e["code"]) for e in problem["errors"]] == [
        (1, "exceeds_credits"),
        (2, "currency_mismatch"),
    ]
    after = await client.get("/v1/ledger/verify", headers=operator.headers)
    assert after.json()["entries"] == before.json()["entries"]
    assert (await ledger.get_account(a))["debits_posted"] == cny("0.00")
    for item in transfers:
        missing = await client.get(f"/v1/ledger/transfers/{item['id']}", headers=operator.headers)
        assert missing.status_code == 404


async def test_batch_refuses_repeated_ids(client, ledger: Ledger, operator):
    a = await ledger.funded("10.00")
    b = await ledger.account()
    item = {
        "id": uid(),
        "debit_account_id": a,
        "credit_account_id": b,
        "amount": cny("1.00"),
        "code": "leg",
    }
    response = await client.post(
        "/v1/ledger/transfers/batch", json={"transfers": [item, item]}, headers=operator.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "id_repeated_in_batch"


async def test_balance_as_of_an_instant_reads_the_running_totals(
    client, ledger: Ledger, operator, clock
):
    source = await ledger.funded("100.00")
    target = await ledger.account()
    await ledger.transfer(source, target, "10.00")
    clock.advance(timedelta(seconds=5))
    between = clock.now().isoformat()
    clock.advance(timedelta(seconds=5))
    await ledger.transfer(source, target, "20.00")
    await ledger.transfer(source, target, "5.00", pending=True)

    async def balance(as_of: str | None) -> dict:
        params = {"as_of": as_of} if as_of else {}
        response = await client.get(
            f"/v1/ledger/accounts/{target}/balance", params=params, headers=operator.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    then = await balance(between)
    assert then["credits_posted"] == cny("10.00")
    assert then["credits_pending"] == cny("0.00")
    now = await balance(None)
    assert now["credits_posted"] == cny("30.00")
    assert now["credits_pending"] == cny("5.00")
    before_all = await balance("2000-01-01T00:00:00Z")
    assert before_all["credits_posted"] == cny("0.00")


async def test_account_transfers_page_with_cursor_and_filters(client, ledger: Ledger, operator):
    source = await ledger.funded("100.00")
    target = await ledger.account()
    ids = [(await ledger.transfer(source, target, "1.00"))["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/v1/ledger/accounts/{target}/transfers", params=params, headers=operator.headers
        )
        assert page.status_code == 200
        seen += [t["id"] for t in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    debits = await client.get(
        f"/v1/ledger/accounts/{target}/transfers",
        params={"side": "debit"},
        headers=operator.headers,
    )
    assert debits.json()["items"] == []
    bad = await client.get(
        f"/v1/ledger/accounts/{target}/transfers",
        params={"cursor": "not-a-cursor"},
        headers=operator.headers,
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


async def test_fx_transfer_moves_through_position_accounts_at_the_recorded_rate(
    client, ledger: Ledger, operator
):
    rate = await client.post(
        "/v1/ledger/fx-rates",
        headers=operator.headers,
        json={"base_currency": "USD", "quote_currency": "JPY", "rate": "151.235"},
    )
    assert rate.status_code == 201, rate.text
    usd = await ledger.funded("100.00", "USD")
    jpy = await ledger.account("JPY")
    body = {
        "id": uid("fx"),
        "debit_account_id": usd,
        "credit_account_id": jpy,
        "amount": {"amount": "10.01", "currency": "USD"},
        "code": "fx",
        "rate_id": rate.json()["id"],
    }
    response = await client.post("/v1/ledger/fx-transfers", json=body, headers=operator.headers)
    assert response.status_code == 201, response.text
    legs = response.json()["transfers"]
    assert legs[0]["amount"] == {"amount": "10.01", "currency": "USD"}
    # 10.01 * 151.235 = 1513.86235 JPY, rounded half-even to whole yen
    assert legs[1]["amount"] == {"amount": "1514", "currency": "JPY"}
    assert {leg["fx_rate_id"] for leg in legs} == {rate.json()["id"]}
    assert legs[0]["credit_account_id"] == "exchange.fx_position.USD"
    assert (await ledger.get_account(jpy))["credits_posted"] == {
        "amount": "1514",
        "currency": "JPY",
    }
    replay = await client.post("/v1/ledger/fx-transfers", json=body, headers=operator.headers)
    assert replay.status_code == 200


async def test_fx_transfer_without_a_rate_is_refused(client, ledger: Ledger, operator):
    chf = await ledger.funded("100.00", "CHF")
    sek = await ledger.account("SEK")
    response = await client.post(
        "/v1/ledger/fx-transfers",
        headers=operator.headers,
        json={
            "id": uid(),
            "debit_account_id": chf,
            "credit_account_id": sek,
            "amount": {"amount": "1.00", "currency": "CHF"},
            "code": "fx",
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "fx_rate_not_found"


async def test_verify_checks_the_chain_and_ranges(client, ledger: Ledger, operator, auditor):
    source = await ledger.funded("10.00")
    await ledger.transfer(source, await ledger.account(), "1.00")
    whole = await client.get("/v1/ledger/verify", headers=auditor.headers)
    assert whole.status_code == 200
    body = whole.json()
    assert body["ok"] is True and body["first_broken"] is None
    assert body["entries"] >= 2 and body["accounts_checked"] >= 2
    assert len(body["head_hash"]) == 64
    ranged = await client.get(
        "/v1/ledger/verify", params={"from": 2, "to": 2}, headers=auditor.headers
    )
    assert ranged.json()["ok"] is True and ranged.json()["entries"] == 1


async def test_idempotency_key_replays_the_stored_response(client, operator):
    body = {"currency": "CNY", "code": "available"}
    headers = {**operator.headers, "Idempotency-Key": uid("idem")}
    first = await client.post("/v1/ledger/accounts", json=body, headers=headers)
    second = await client.post("/v1/ledger/accounts", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    other = await client.post(
        "/v1/ledger/accounts", json={**body, "currency": "USD"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


async def test_concurrent_single_transfers_are_each_applied_or_refused_on_their_own(
    client, ledger: Ledger, operator
):
    """Requests arriving together share a transaction, yet each answers as if it came alone."""
    source = await ledger.funded("50.00")
    target = await ledger.account()
    bodies = [
        {
            "id": uid(),
            "debit_account_id": source,
            "credit_account_id": target,
            "amount": cny(amount),
            "code": "together",
        }
        for amount in ("10.00", "60.00", "15.00", "30.00", "5.00", "1.00")
    ]
    repeat = dict(bodies[0])
    conflict = {**bodies[2], "amount": cny("15.01")}
    answers = await asyncio.gather(
        *(
            client.post("/v1/ledger/transfers", json=body, headers=operator.headers)
            for body in [*bodies, repeat, conflict]
        )
    )
    by_id: dict[str, list[int]] = {}
    for body, answer in zip([*bodies, repeat, conflict], answers, strict=True):
        by_id.setdefault(body["id"], []).append(answer.status_code)
        if answer.status_code >= 400:
            assert answer.headers["content-type"].startswith("application/problem+json")
    sent = [*bodies, repeat, conflict]
    assert by_id[bodies[1]["id"]] == [409]  # 60.00 never fits in 50.00
    assert sorted(by_id[bodies[0]["id"]]) == [200, 201]  # the repeat replays
    assert sorted(by_id[bodies[2]["id"]]) in ([201, 409], [409, 409])  # one of the two, or none
    accepted = [b for b, a in zip(sent, answers, strict=True) if a.status_code == 201]
    total = sum(int(b["amount"]["amount"].replace(".", "")) for b in accepted)
    assert total <= 5000
    account = await ledger.get_account(source)
    assert account["debits_posted"] == cny(f"{total // 100}.{total % 100:02d}")
    verify = await client.get("/v1/ledger/verify", headers=operator.headers)
    assert verify.json()["ok"] is True


async def test_independent_transfers_leave_out_the_refused_and_replay_repeats(
    db, clock, ledger: Ledger
):
    from exchange.ledger import service

    source = await ledger.funded("20.00")
    target = await ledger.account()

    def spec(transfer_id: str, amount: int) -> service.TransferSpec:
        return service.TransferSpec(transfer_id, source, target, amount, "CNY", "each")

    first, second, third = uid(), uid(), uid()
    specs = [
        spec(first, 1500),
        spec(second, 1000),
        spec(third, 500),
        spec(first, 1500),
        spec(third, 501),
    ]
    outcomes = await db.run(lambda s: service.create_transfers_each(s, specs, clock.now()))
    assert [(o.created, o.failure.code if o.failure else None) for o in outcomes] == [
        (True, None),
        (False, "exceeds_credits"),  # 15.00 + 10.00 > 20.00: left out, the rest apply
        (True, None),
        (False, None),  # the same id and fields again: a replay of the first
        (False, "exists_with_different_fields"),
    ]
    assert outcomes[3].view == outcomes[0].view
    assert (await ledger.get_account(source))["debits_posted"] == cny("20.00")
