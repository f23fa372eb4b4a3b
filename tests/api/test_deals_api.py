"""Parties, assets, rights confirmation and pricing through the API: an asset walked from draft to
priced, and each refusal on the way."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from exchange.auth.service import Role
from tests.conftest import new_key
from tests.factories import PROBLEM, Chain


async def test_asset_walks_from_draft_to_priced(client, chain: Chain, operator, db, clock):
    university = await chain.party("university")
    asset = await chain.asset({university: "100"})
    assert asset["ipc"] == ["H01M 10/0562", "C01B 25/45"]
    assert asset["owners"] == [{"party_id": university, "share": "100.00"}]
    deal = await chain.deal(asset["id"], university)
    assert deal["state"] == "draft" and deal["version"] == 1
    assert set(deal["allowed_actions"]) == {"submit", "withdraw"}

    submitted = await chain.act(deal["id"], "submit", if_match='"1"')
    assert submitted["state"] == "rights_review"
    checklist = await chain.check_all(deal["id"])
    assert checklist["confirmable"] is True
    confirmed = await chain.act(deal["id"], "confirm")
    assert confirmed["state"] == "rights_confirmed"

    certificate = await client.get(f"/v1/deals/{deal['id']}/certificate", headers=operator.headers)
    assert certificate.status_code == 200
    content = certificate.json()["content"]
    assert content["asset_version"] == 1 and len(content["checks"]) == 7
    canonical = certificate.json()
    assert len(canonical["sha256"]) == 64

    valuation = await chain.valuation(deal["id"])
    # Σ revenue_t * 0.05 * 0.75 / 1.1^t = 3,409,090.909... + 3,719,008.264... + 4,226,145.755...
    assert valuation["value"] == {"amount": "113542.45", "currency": "CNY"}
    assert valuation["recomputed_value"] == valuation["value"]
    assert valuation["method_version"] == "income/1"

    priced = await chain.act(
        deal["id"],
        "price",
        {
            "valuation_id": valuation["id"],
            "listing_price": {"amount": "120000.00", "currency": "CNY"},
            "reserve": {"amount": "115000.00", "currency": "CNY"},
        },
    )
    assert priced["state"] == "priced"
    assert priced["appraised_value"] == valuation["value"]
    assert priced["listing_price"] == {"amount": "120000.00", "currency": "CNY"}

    history = await client.get(f"/v1/deals/{deal['id']}/history", headers=operator.headers)
    assert [(t["action"], t["to_state"]) for t in history.json()["transitions"]] == [
        ("create", "draft"),
        ("submit", "rights_review"),
        ("confirm", "rights_confirmed"),
        ("price", "priced"),
    ]
    assert all(t["request_id"] for t in history.json()["transitions"])

    from exchange.events import events_of

    events = await db.read(lambda s: events_of(s, deal["id"]))
    assert [e.type for e in events] == ["deal.create", "deal.submit", "deal.confirm", "deal.price"]
    assert [e.version for e in events] == [1, 2, 3, 4]


async def test_disallowed_action_is_409_with_state_and_allowed_actions(chain: Chain):
    seller = await chain.party()
    deal = await chain.deal((await chain.asset({seller: "100"}))["id"], seller)
    problem = await chain.act(deal["id"], "confirm", expect=409)
    assert problem["code"] == "transition_not_allowed"
    assert problem["state"] == "draft"
    assert problem["allowed_actions"] == ["submit", "withdraw"]
    withdrawn = await chain.act(deal["id"], "withdraw", {"reason": "no longer offered"})
    assert withdrawn["state"] == "withdrawn" and withdrawn["allowed_actions"] == []
    again = await chain.act(deal["id"], "submit", expect=409)
    assert again["allowed_actions"] == []


async def test_stale_if_match_is_412_and_writes_nothing(client, chain: Chain, operator):
    seller = await chain.party()
    deal = await chain.deal((await chain.asset({seller: "100"}))["id"], seller)
    read = await client.get(f"/v1/deals/{deal['id']}", headers=operator.headers)
    assert read.headers["etag"] == '"1"'
    await chain.act(deal["id"], "submit", if_match='"1"')
    stale = await chain.act(deal["id"], "withdraw", expect=412, if_match='"1"')
    assert stale["code"] == "precondition_failed" and stale["current_version"] == 2
    after = await client.get(f"/v1/deals/{deal['id']}", headers=operator.headers)
    assert after.json()["state"] == "rights_review" and after.headers["etag"] == '"2"'
    bad = await chain.act(deal["id"], "withdraw", expect=422, if_match="yesterday")
    assert bad["errors"][0]["field"] == "If-Match"


async def test_confirm_is_refused_while_checks_fail_or_are_missing(chain: Chain):
    seller = await chain.party()
    deal = await chain.deal((await chain.asset({seller: "100"}))["id"], seller)
    await chain.act(deal["id"], "submit")
    await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "ownership", "result": "pass", "evidence": [await chain.evidence()]},
    )
    await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "status_valid", "result": "fail", "note": "lapsed for unpaid fees"},
    )
    refused = await chain.act(deal["id"], "confirm", expect=409)
    assert refused["code"] == "guard_failed"
    listed = {e["check"]: e["detail"] for e in refused["errors"]}
    assert "ownership" not in listed
    assert listed["status_valid"] == "recorded as failed"
    assert listed["pledgee_consented"] == "not recorded"
    assert len(listed) == 6


async def test_co_owner_without_consent_blocks_the_check_until_consent_is_recorded(
    chain: Chain, client, operator
):
    seller = await chain.party()
    co_owner = await chain.party("research_institute")
    deal = await chain.deal((await chain.asset({seller: "60", co_owner: "40"}))["id"], seller)
    await chain.act(deal["id"], "submit")
    refused = await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "co_owners_consented", "result": "pass", "evidence": [await chain.evidence()]},
        expect=409,
    )
    assert refused["errors"][0]["code"] == "contradicted_by_records"
    assert co_owner in refused["detail"]
    stranger = await chain.party()
    await chain.post(
        f"/v1/deals/{deal['id']}/consents",
        {"party_id": stranger, "role": "co_owner", "evidence_sha256": await chain.evidence()},
        expect=422,
    )
    await chain.post(
        f"/v1/deals/{deal['id']}/consents",
        {"party_id": co_owner, "role": "co_owner", "evidence_sha256": await chain.evidence()},
    )
    checklist = await chain.check_all(deal["id"])
    assert checklist["confirmable"] is True
    assert (await chain.act(deal["id"], "confirm"))["state"] == "rights_confirmed"


async def test_exclusive_licence_conflict_is_found(chain: Chain):
    seller = await chain.party()
    licensed = await chain.asset(
        {seller: "100"},
        licences=[
            {
                "kind": "exclusive",
                "licensee": "Shenzhen Battery Co.",
                "territory": ["CN"],
                "start_date": "2024-01-01",
                "end_date": "2030-12-31",
            }
        ],
    )
    deal = await chain.deal(
        licensed["id"],
        seller,
        rights_offered="non_exclusive_licence",
        territory=["CN", "DE"],
        term_start_date="2026-01-01",
        term_end_date="2028-12-31",
    )
    await chain.act(deal["id"], "submit")
    refused = await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "no_exclusive_conflict", "result": "pass", "evidence": [await chain.evidence()]},
        expect=409,
    )
    assert "exclusive licence" in refused["detail"]
    abroad = await chain.deal(
        licensed["id"],
        seller,
        rights_offered="sole_licence",
        territory=["DE"],
        term_end_date="2028-12-31",
    )
    await chain.act(abroad["id"], "submit")
    await chain.post(
        f"/v1/deals/{abroad['id']}/rights-checks",
        {"check": "no_exclusive_conflict", "result": "pass", "evidence": [await chain.evidence()]},
    )


async def test_pledge_needs_the_pledgee_consent_once_registered(chain: Chain):
    seller = await chain.party()
    bank = await chain.party("bank")
    asset = await chain.asset(
        {seller: "100"}, pledges=[{"pledgee_party_id": bank, "registration_number": "ZX2024-001"}]
    )
    deal = await chain.deal(asset["id"], seller)
    await chain.act(deal["id"], "submit")
    refused = await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "pledgee_consented", "result": "pass", "evidence": [await chain.evidence()]},
        expect=409,
    )
    assert bank in refused["detail"]
    await chain.post(
        f"/v1/deals/{deal['id']}/consents",
        {"party_id": bank, "role": "pledgee", "evidence_sha256": await chain.evidence()},
    )
    await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "pledgee_consented", "result": "pass", "evidence": [await chain.evidence()]},
    )


async def test_a_change_to_the_assets_rights_sends_the_deal_back_to_review(
    chain: Chain, client, operator
):
    seller = await chain.party()
    body = chain.asset_body({seller: "100"})
    asset = await chain.post("/v1/assets", body)
    deal = await chain.deal(asset["id"], seller)
    await chain.act(deal["id"], "submit")
    await chain.check_all(deal["id"])
    await chain.act(deal["id"], "confirm")
    title_only = await client.put(
        f"/v1/assets/{asset['id']}",
        headers={**operator.headers, "If-Match": '"1"'},
        json={**body, "title_en": "Renamed"},
    )
    assert title_only.status_code == 200, title_only.text
    still = await client.get(f"/v1/deals/{deal['id']}", headers=operator.headers)
    assert still.json()["state"] == "rights_confirmed"
    stale = await client.put(
        f"/v1/assets/{asset['id']}",
        headers={**operator.headers, "If-Match": '"1"'},
        json={**body, "legal_status": "lapsed"},
    )
    assert stale.status_code == 412
    changed = await client.put(
        f"/v1/assets/{asset['id']}",
        headers={**operator.headers, "If-Match": '"2"'},
        json={**body, "expiry_date": "2040-01-01"},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 3
    reviewed = await client.get(f"/v1/deals/{deal['id']}", headers=operator.headers)
    assert reviewed.json()["state"] == "rights_review"
    assert reviewed.json()["certificate_id"] is None
    checklist = await client.get(f"/v1/deals/{deal['id']}/rights-checks", headers=operator.headers)
    assert all(c["stale"] for c in checklist.json()["checks"])
    refused = await chain.act(deal["id"], "confirm", expect=409)
    assert {e["detail"] for e in refused["errors"]} == {"recorded before the asset last changed"}


async def test_price_guards(chain: Chain):
    seller = await chain.party()
    deal = await chain.deal((await chain.asset({seller: "100"}))["id"], seller)
    await chain.act(deal["id"], "submit")
    await chain.check_all(deal["id"])
    await chain.act(deal["id"], "confirm")
    valuation = await chain.valuation(deal["id"])
    below = await chain.act(
        deal["id"],
        "price",
        {
            "valuation_id": valuation["id"],
            "listing_price": {"amount": "100000.00", "currency": "CNY"},
        },
        expect=409,
    )
    assert {e["code"] for e in below["errors"]} == {"below_appraised_value", "reserve_required"}
    missing = await chain.act(
        deal["id"],
        "price",
        {"valuation_id": "val_nope", "listing_price": {"amount": "1.00", "currency": "CNY"}},
        expect=409,
    )
    assert missing["errors"][0]["code"] == "valuation_not_found"


async def test_member_works_only_on_its_own_partys_assets_and_deals(
    client, chain: Chain, db, clock
):
    mine = await chain.party()
    theirs = await chain.party()
    member = await new_key(db, clock, Role.member, mine)
    other_asset = await chain.asset({theirs: "100"})
    for path in (f"/v1/assets/{other_asset['id']}", f"/v1/parties/{theirs}"):
        response = await client.get(path, headers=member.headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith(PROBLEM)
    other_deal = await chain.deal(other_asset["id"], theirs)
    for path in (
        f"/v1/deals/{other_deal['id']}",
        f"/v1/deals/{other_deal['id']}/history",
        f"/v1/deals/{other_deal['id']}/rights-checks",
    ):
        assert (await client.get(path, headers=member.headers)).status_code == 404, path
    await chain.act(other_deal["id"], "withdraw", key=member, expect=404)
    steal = await client.put(
        f"/v1/assets/{other_asset['id']}",
        headers=member.headers,
        json=chain.asset_body({mine: "100"}),
    )
    assert steal.status_code == 404
    foreign = await client.post(
        "/v1/deals",
        headers=member.headers,
        json={
            "asset_id": other_asset["id"],
            "rights_offered": "assignment",
            "trade_method": "negotiated",
        },
    )
    assert foreign.status_code == 404

    own_asset = await chain.post("/v1/assets", chain.asset_body({mine: "100"}), key=member)
    own_deal = await chain.post(
        "/v1/deals",
        {"asset_id": own_asset["id"], "rights_offered": "assignment", "trade_method": "negotiated"},
        key=member,
    )
    assert own_deal["seller_party_id"] == mine
    submitted = await chain.act(own_deal["id"], "submit", key=member)
    assert submitted["allowed_actions"] == ["withdraw"]
    forbidden = await chain.act(own_deal["id"], "confirm", key=member, expect=403)
    assert forbidden["code"] == "forbidden"
    listed = await client.get("/v1/deals", headers=member.headers)
    assert {d["id"] for d in listed.json()["items"]} == {own_deal["id"]}


BAD_PARTIES = [
    ({"name": "X", "kind": "enterprise", "uscc": "91350100M000100Y4Z"}, "uscc"),
    ({"name": "X", "kind": "enterprise", "uscc": "91350100M000I00Y43"}, "uscc"),
    ({"name": "X", "kind": "enterprise"}, ""),
    ({"name": "X", "kind": "enterprise", "country": "XX", "registration_number": "1"}, "country"),
    ({"name": "X", "kind": "enterprise", "country": "DE"}, ""),
    ({"name": "X", "kind": "dragon", "uscc": "914403001922038216"}, "kind"),
]


@pytest.mark.parametrize(("body", "field"), BAD_PARTIES)
async def test_bad_party_identifiers_are_refused(chain: Chain, body, field):
    problem = await chain.post("/v1/parties", body, expect=422)
    assert problem["code"] == "validation_failed"
    assert problem["errors"][0]["field"].startswith(field)


async def test_foreign_party_and_its_accounts(chain: Chain):
    party = await chain.post(
        "/v1/parties",
        {
            "name": "Fraunhofer-Test",
            "kind": "research_institute",
            "country": "DE",
            "registration_number": "VR 4461",
        },
    )
    assert party["country"] == "DE" and party["uscc"] is None
    opened = await chain.post(
        f"/v1/parties/{party['id']}/accounts", {"currency": "EUR"}, expect=200
    )
    codes = {a["code"]: a for a in opened["accounts"]}
    assert set(codes) == {"available", "deposit"}
    assert codes["available"]["flags"]["debits_must_not_exceed_credits"] is True
    again = await chain.post(f"/v1/parties/{party['id']}/accounts", {"currency": "EUR"}, expect=200)
    assert again == opened
    duplicate = await chain.post(
        "/v1/parties", {"name": "Copy", "kind": "enterprise", "uscc": "914403001922038216"}
    )
    assert duplicate["uscc"] == "914403001922038216"
    taken = await chain.post(
        "/v1/parties",
        {"name": "Copy", "kind": "enterprise", "uscc": "914403001922038216"},
        expect=409,
    )
    assert taken["errors"][0]["field"] == "uscc"


async def test_bad_asset_input_is_refused_naming_the_field(chain: Chain):
    owner = await chain.party()
    other = await chain.party()
    cases = [
        ({"application_number": "202310123456.7"}, "application_number"),
        ({"application_number": "2023101234"}, "application_number"),
        ({"ipc": ["I06N 3/08"]}, "ipc"),
        ({"ipc": ["G06N3"]}, "ipc"),
        ({"trl": 10}, "trl"),
        ({"owners": [{"party_id": owner, "share": "60"}, {"party_id": other, "share": "30"}]}, ""),
        ({"owners": [{"party_id": owner, "share": "100.001"}]}, "owners"),
        ({"expiry_date": "2020-01-01"}, ""),
        (
            {
                "licences": [
                    {
                        "kind": "exclusive",
                        "licensee": "A",
                        "territory": ["ZZ"],
                        "start_date": "2024-01-01",
                    }
                ]
            },
            "licences",
        ),
    ]
    for changes, field in cases:
        problem = await chain.post(
            "/v1/assets", chain.asset_body({owner: "100"}, **changes), expect=422
        )
        assert problem["errors"][0]["field"].startswith(field), (changes, problem)
    shares = await chain.post(
        "/v1/assets", chain.asset_body({owner: "60", other: "30"}), expect=422
    )
    assert "90.00%" in shares["detail"]
    unknown = await chain.post("/v1/assets", chain.asset_body({"nobody": "100"}), expect=422)
    assert unknown["errors"][0]["field"] == "owners.0.party_id"


async def test_evidence_is_content_addressed(client, operator, chain: Chain):
    content = b"%PDF-1.7 assignment agreement " + secrets.token_bytes(8)
    headers = {**operator.headers, "Content-Type": "application/pdf"}
    first = await client.post("/v1/evidence", content=content, headers=headers)
    second = await client.post("/v1/evidence", content=content, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    digest = hashlib.sha256(content).hexdigest()
    assert first.json()["sha256"] == digest
    read = await client.get(f"/v1/evidence/{digest}", headers=operator.headers)
    assert read.content == content
    wrong = await client.post(
        "/v1/evidence",
        content=b"x",
        headers={**operator.headers, "Content-Type": "application/x-msdownload"},
    )
    assert wrong.status_code == 422
    seller = await chain.party()
    deal = await chain.deal((await chain.asset({seller: "100"}))["id"], seller)
    await chain.act(deal["id"], "submit")
    unknown = await chain.post(
        f"/v1/deals/{deal['id']}/rights-checks",
        {"check": "ownership", "result": "pass", "evidence": ["0" * 64]},
        expect=422,
    )
    assert unknown["errors"][0]["code"] == "evidence_not_found"


async def test_state_machine_document_is_the_table(client, operator):
    from exchange.deals.machine import TRANSITIONS

    response = await client.get("/v1/deals/state-machine", headers=operator.headers)
    assert len(response.json()["transitions"]) == len(TRANSITIONS)
