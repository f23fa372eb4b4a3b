"""Authentication, per-route and per-object authorisation, the audit trail, and the service's
own endpoints (request ids, health, readiness, metrics)."""

from __future__ import annotations

from exchange.auth.service import Role, revoke_key
from tests.conftest import Ledger, cny, new_key, new_member, uid


async def test_missing_or_bad_key_is_401_problem(client):
    missing = await client.get("/v1/ledger/accounts")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["code"] == "unauthenticated"
    for header in ("Basic abc", "Bearer ", "Bearer exk.key_x.nope", "Bearer garbage"):
        response = await client.get("/v1/ledger/accounts", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_revoked_key_stops_working(client, db, clock):
    key = await new_key(db, clock, Role.operator)
    assert (await client.get("/v1/ledger/accounts", headers=key.headers)).status_code == 200
    key_id = key.token.split(".")[1]
    await db.run(lambda s: revoke_key(s, key_id, clock.now()))
    assert (await client.get("/v1/ledger/accounts", headers=key.headers)).status_code == 401


async def test_roles_are_checked_per_route(client, db, clock, ledger: Ledger):
    auditor = await new_key(db, clock, Role.auditor)
    partner = await new_key(db, clock, Role.partner)
    source = await ledger.funded("10.00")
    body = {
        "id": uid(),
        "debit_account_id": source,
        "credit_account_id": source + "x",
        "amount": cny("1.00"),
        "code": "t",
    }
    refused = await client.post("/v1/ledger/transfers", json=body, headers=auditor.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (
        await client.get(f"/v1/ledger/accounts/{source}", headers=auditor.headers)
    ).status_code == 200
    assert (
        await client.get(f"/v1/ledger/accounts/{source}", headers=partner.headers)
    ).status_code == 403
    assert (await client.get("/v1/ledger/verify", headers=partner.headers)).status_code == 403


async def test_member_sees_and_moves_only_its_own_partys_money(client, db, clock, ledger):
    alice = await new_member(db, clock)
    bob = await new_member(db, clock)
    alice_account = await ledger.funded("50.00", owner={"type": "party", "id": alice.party_id})
    bob_account = await ledger.funded("50.00", owner={"type": "party", "id": bob.party_id})
    escrow = await ledger.account(code="escrow", owner={"type": "exchange"})

    own = await client.get(f"/v1/ledger/accounts/{alice_account}", headers=alice.headers)
    assert own.status_code == 200
    for path in (
        f"/v1/ledger/accounts/{bob_account}",
        f"/v1/ledger/accounts/{bob_account}/balance",
        f"/v1/ledger/accounts/{bob_account}/transfers",
    ):
        other = await client.get(path, headers=alice.headers)
        assert other.status_code == 404, path
        assert other.json()["code"] == "account_not_found"

    pays = await ledger.transfer(alice_account, escrow, "5.00", key=alice)
    assert pays["status"] == "posted"
    steals = await ledger.transfer(bob_account, alice_account, "5.00", key=alice, expect=422)
    assert steals["code"] == "debit_account_not_found"
    assert (await ledger.get_account(bob_account))["debits_posted"] == cny("0.00")

    seen = await client.get(f"/v1/ledger/transfers/{pays['id']}", headers=bob.headers)
    assert seen.status_code == 404
    listed = await client.get("/v1/ledger/accounts", headers=alice.headers)
    assert {a["id"] for a in listed.json()["items"]} == {alice_account}

    foreign_open = await client.post(
        "/v1/ledger/accounts",
        headers=alice.headers,
        json={
            "currency": "CNY",
            "code": "available",
            "owner": {"type": "party", "id": bob.party_id},
        },
    )
    assert foreign_open.status_code == 403
    post = await client.post(f"/v1/ledger/transfers/{pays['id']}/post", headers=alice.headers)
    assert post.status_code == 403


async def test_every_state_changing_request_is_audited_with_its_outcome(
    client, operator, auditor, ledger: Ledger
):
    source = await ledger.funded("10.00")
    target = await ledger.account()
    done = await ledger.transfer(source, target, "1.00")
    refused = await ledger.transfer(source, target, "100.00", expect=409)

    async def records(target_id: str) -> list[dict]:
        response = await client.get(
            "/v1/audit/records", params={"target": target_id}, headers=auditor.headers
        )
        assert response.status_code == 200
        return response.json()["items"]

    [ok] = await records(done["id"])
    assert ok["action"] == "ledger.transfer.create"
    assert ok["outcome"] == "ok" and ok["status"] == 201
    assert ok["role"] == "operator" and ok["request_id"]
    refused_id = refused["errors"][0]["id"]
    [failed] = await records(refused_id)
    assert failed["outcome"] == "exceeds_credits" and failed["status"] == 409
    member_view = await client.get("/v1/audit/records", headers=(await _member(client)).headers)
    assert member_view.status_code == 403


async def _member(client):
    app = client._transport.app
    services = app.state.services
    return await new_member(services.db, services.clock)


async def test_audit_trail_refuses_change_in_the_database(db):
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    async with db.sessions() as session, session.begin():
        try:
            await session.execute(text("UPDATE audit_record SET outcome = 'forged'"))
        except DBAPIError as error:
            assert "append-only" in str(error)
        else:
            raise AssertionError("the audit trail accepted an UPDATE")


async def test_request_id_is_returned_and_kept(client, operator):
    response = await client.get("/v1/ledger/accounts", headers=operator.headers)
    assert len(response.headers["x-request-id"]) >= 32
    given = "7f1c2b8e9a0d4c3b8a6e5f4d3c2b1a09"
    echoed = await client.get("/healthz", headers={"X-Request-ID": given})
    assert echoed.headers["x-request-id"] == given


async def test_health_readiness_and_metrics(client, operator):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == ready.json()["head"]
    await client.get("/v1/ledger/accounts", headers=operator.headers)
    for _ in range(2):  # the second request finds its route template remembered
        await client.get("/v1/ledger/accounts/acc-metrics-probe", headers=operator.headers)
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text
    assert 'handler="/v1/ledger/accounts/{account_id}"' in metrics.text
    assert "acc-metrics-probe" not in metrics.text


async def test_requests_refused_before_their_unit_of_work_are_audited_too(
    client, db, clock, auditor, ledger: Ledger
):
    member = await new_member(db, clock)
    other = await new_member(db, clock)
    forbidden = await client.post(
        "/v1/ledger/accounts",
        headers=member.headers,
        json={
            "currency": "CNY",
            "code": "available",
            "owner": {"type": "party", "id": other.party_id},
        },
    )
    assert forbidden.status_code == 403
    invalid = await client.post(
        "/v1/ledger/transfers", headers=member.headers, json={"id": "bad id"}
    )
    assert invalid.status_code == 422
    records = await client.get("/v1/audit/records", params={"limit": 500}, headers=auditor.headers)
    mine = [r for r in records.json()["items"] if r["key_id"] == member.token.split(".")[1]]
    while records.json()["next_cursor"]:
        records = await client.get(
            "/v1/audit/records",
            headers=auditor.headers,
            params={"limit": 500, "cursor": records.json()["next_cursor"]},
        )
        mine += [r for r in records.json()["items"] if r["key_id"] == member.token.split(".")[1]]
    assert [(r["action"], r["outcome"], r["status"]) for r in mine] == [
        ("POST /v1/ledger/accounts", "forbidden", 403),
        ("POST /v1/ledger/transfers", "validation_failed", 422),
    ]
    assert all(r["request_id"] for r in mine)
