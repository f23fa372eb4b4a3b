"""Supply-demand docking through the API, on a small bilingual corpus written for the tests.

Each test gives its parties a region of its own and filters on it, so the supplies other tests
put on offer in the shared database do not enter its rankings."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from exchange.auth.service import Role
from exchange.events import OutboxEvent
from tests.conftest import Key, new_key
from tests.factories import Chain, new_uscc


def region() -> str:
    return "CN-" + "".join(secrets.choice("ABCDEFGHJKLMNPQRTUVWXYZ0123456789") for _ in range(3))


class Docking(Chain):
    def __init__(self, client: Any, operator: Key, area: str) -> None:
        super().__init__(client, operator)
        self.area = area

    async def seller(self, country: str = "CN") -> str:
        body: dict[str, Any] = {"name": "Seller", "kind": "university", "region": self.area}
        if country == "CN":
            body["uscc"] = new_uscc()
        else:
            body.update(country=country, registration_number="R-" + secrets.token_hex(3))
        return str((await self.post("/v1/parties", body))["id"])

    async def supply(
        self,
        title_zh: str | None,
        title_en: str | None,
        ipc: list[str],
        *,
        price: str = "500000.00",
        trl: int = 6,
        export_control: str = "free",
        kind: str = "invention_patent",
    ) -> str:
        seller = await self.seller()
        changes: dict[str, Any] = {
            "title_zh": title_zh,
            "title_en": title_en,
            "ipc": ipc,
            "trl": trl,
            "export_control": export_control,
            "kind": kind,
        }
        if kind != "invention_patent":
            changes.update(application_number=None, legal_status="unregistered")
        asset = await self.asset({seller: "100"}, **changes)
        deal = await self.deal(asset["id"], seller, trade_method="negotiated")
        await self.act(deal["id"], "submit")
        await self.check_all(deal["id"])
        await self.act(deal["id"], "confirm")
        valuation = await self.post(
            f"/v1/deals/{deal['id']}/valuations",
            {
                "method": "cost",
                "inputs": {"replacement_cost": 10_000_00, "obsolescence_rate": "0.1"},
            },
        )
        await self.act(
            deal["id"],
            "price",
            {
                "valuation_id": valuation["id"],
                "listing_price": {"amount": price, "currency": "CNY"},
            },
        )
        return str(deal["id"])

    async def demand(self, key: Key | None = None, **fields: Any) -> dict[str, Any]:
        body = {"title": "需求", "description": "", "region": self.area, **fields}
        if key is None and "party_id" not in body:
            body["party_id"] = await self.seller()
        return await self.post("/v1/demands", body, key=key)

    async def matches(
        self, demand_id: str, key: Key | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v1/demands/{demand_id}/matches",
            params={"region": self.area, **params},
            headers=(key or self.operator).headers,
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["matches"]
        return found


@pytest.fixture
def docking(client, operator) -> Docking:
    return Docking(client, operator, region())


async def test_a_chinese_demand_finds_the_chinese_and_the_english_supply(docking: Docking):
    battery_zh = await docking.supply(
        "一种硫化物固态电池电解质及其制备方法", None, ["H01M 10/0562"]
    )
    battery_en = await docking.supply(
        None, "Sulfide solid-state battery electrolyte membrane", ["H01M 10/052"]
    )
    await docking.supply("基于深度神经网络的图像识别方法", None, ["G06N 3/08"])
    await docking.supply(None, "Recombinant mRNA vaccine against influenza", ["A61K 39/145"])
    demand = await docking.demand(
        title="寻求固态电池电解质技术",
        description="用于动力电池的硫化物固态电解质，提高安全性",  # noqa: RUF001
        ipc=["H01M 10/0562"],
    )
    matches = await docking.matches(demand["id"])
    assert {m["id"] for m in matches[:2]} == {battery_zh, battery_en}
    top = matches[0]
    assert top["kind"] == "supply"
    assert set(top["components"]) >= {"text", "ipc", "trl", "budget", "region"}
    assert top["matched_terms"]
    assert top["ipc_depth"] >= 3


async def test_ipc_overlap_orders_equal_texts_by_depth(docking: Docking):
    title = "Industrial robot joint reducer"
    subgroup = await docking.supply(None, title, ["B25J 9/10"])
    subclass = await docking.supply(None, title, ["B25J 19/00"])
    section = await docking.supply(None, title, ["B62D 57/02"])
    demand = await docking.demand(
        title="Robot joint reducer", description="robot arm", ipc=["B25J 9/16"]
    )
    order = [m["id"] for m in await docking.matches(demand["id"])]
    assert order.index(subgroup) < order.index(subclass) < order.index(section)


async def test_filters_hold(docking: Docking):
    cheap = await docking.supply(
        None, "Perovskite photovoltaic cell", ["H10K 30/00"], price="100000.00", trl=4
    )
    dear = await docking.supply(
        None, "Perovskite photovoltaic module", ["H10K 30/00"], price="900000.00", trl=8
    )
    know_how = await docking.supply(
        None, "Perovskite coating know-how", ["H10K 30/00"], kind="know_how", trl=7
    )
    demand = await docking.demand(title="Perovskite solar", description="photovoltaic")
    assert {m["id"] for m in await docking.matches(demand["id"])} == {cheap, dear, know_how}
    assert {m["id"] for m in await docking.matches(demand["id"], price_max="200000.00")} == {cheap}
    assert {m["id"] for m in await docking.matches(demand["id"], min_trl=7)} == {dear, know_how}
    assert {m["id"] for m in await docking.matches(demand["id"], kind=["know_how"])} == {know_how}
    elsewhere = await docking.matches(demand["id"], region=region())
    assert elsewhere == []


async def test_a_new_supply_appears_without_a_rebuild_and_a_withdrawn_one_disappears(
    docking: Docking,
):
    demand = await docking.demand(
        title="Catalyst for hydrogen fuel cells", description="platinum-free catalyst"
    )
    assert await docking.matches(demand["id"]) == []
    deal_id = await docking.supply(None, "Platinum-free fuel cell catalyst", ["H01M 4/90"])
    assert [m["id"] for m in await docking.matches(demand["id"])] == [deal_id]
    await docking.act(deal_id, "withdraw")
    assert await docking.matches(demand["id"]) == []


async def test_export_control_is_a_hard_filter_for_a_foreign_demander(docking: Docking, db, clock):
    free = await docking.supply(None, "Quantum dot display film", ["H10K 50/00"])
    await docking.supply(
        None,
        "Quantum dot display film, military grade",
        ["H10K 50/00"],
        export_control="prohibited",
    )
    foreign = await docking.seller(country="DE")
    demand = await docking.demand(
        party_id=foreign, title="Quantum dot display", description="display film"
    )
    assert [m["id"] for m in await docking.matches(demand["id"])] == [free]


async def test_background_matches_are_kept_and_announced(app, docking: Docking, db, operator):
    deal_id = await docking.supply("石墨烯导热膜", "Graphene thermal film", ["C01B 32/184"])
    demand = await docking.demand(title="石墨烯散热", description="导热膜", ipc=["C01B 32/184"])
    runtime = app.state.services.docking
    subjects = await runtime.refresh()
    await runtime.announce([*subjects, f"demand:{demand['id']}"])
    response = await docking.client.get(
        "/v1/docking/match-sets",
        params={"subject": f"demand:{demand['id']}"},
        headers=operator.headers,
    )
    [match_set] = response.json()["items"]
    assert match_set["subject_version"] == 1
    assert deal_id in [m["id"] for m in match_set["matches"]]
    await runtime.announce([f"demand:{demand['id']}"])  # the same version: announced once
    again = await docking.client.get(
        "/v1/docking/match-sets",
        params={"subject": f"demand:{demand['id']}"},
        headers=operator.headers,
    )
    assert len(again.json()["items"]) == 1

    from sqlalchemy import select

    async def events(session: Any) -> list[OutboxEvent]:
        query = select(OutboxEvent).where(OutboxEvent.aggregate_id == f"demand:{demand['id']}")
        return list((await session.scalars(query)).all())

    assert [e.type for e in await db.read(events)] == ["docking.matches_found"]


async def test_demands_are_member_scoped_and_versioned(client, docking: Docking, db, clock):
    mine = await docking.seller()
    theirs = await docking.seller()
    member = await new_key(db, clock, Role.member, mine)
    other = await new_key(db, clock, Role.member, theirs)
    private = await docking.demand(
        key=member, title="Secret process", description="x", visibility="private"
    )
    assert private["party_id"] == mine
    assert (
        await client.get(f"/v1/demands/{private['id']}", headers=other.headers)
    ).status_code == 404
    assert (
        await client.get(f"/v1/demands/{private['id']}/matches", headers=other.headers)
    ).status_code == 404
    public = await docking.demand(key=member, title="Open call", description="y")
    assert (
        await client.get(f"/v1/demands/{public['id']}", headers=other.headers)
    ).status_code == 200
    changed = await client.put(
        f"/v1/demands/{public['id']}",
        headers={**member.headers, "If-Match": '"1"'},
        json={"title": "Open call 2", "description": "y", "region": docking.area},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stale = await client.put(
        f"/v1/demands/{public['id']}",
        headers={**member.headers, "If-Match": '"1"'},
        json={"title": "x", "description": "y"},
    )
    assert stale.status_code == 412
    taken = await client.put(
        f"/v1/demands/{public['id']}",
        headers=other.headers,
        json={"title": "mine now", "description": "y"},
    )
    assert taken.status_code == 404
    gone = await client.delete(f"/v1/demands/{public['id']}", headers=member.headers)
    assert gone.status_code == 200 and gone.json()["state"] == "withdrawn"
    listed = await client.get("/v1/demands", headers=member.headers)
    assert [d["id"] for d in listed.json()["items"]] == [private["id"]]
    bad = await client.post(
        "/v1/demands",
        headers=member.headers,
        json={
            "title": "t",
            "description": "d",
            "budget_min": {"amount": "9.00", "currency": "CNY"},
            "budget_max": {"amount": "1.00", "currency": "CNY"},
        },
    )
    assert bad.status_code == 422


async def test_interest_is_recorded_once_and_tells_the_supplier(docking: Docking, db):
    deal_id = await docking.supply(None, "Lidar point cloud segmentation", ["G06T 7/10"])
    demand = await docking.demand(title="Lidar segmentation", description="point cloud")
    first = await docking.post(
        f"/v1/demands/{demand['id']}/interests", {"deal_id": deal_id, "note": "please call"}
    )
    again = await docking.post(f"/v1/demands/{demand['id']}/interests", {"deal_id": deal_id})
    assert first == again
    assert first["supplier_party_id"] != first["demander_party_id"]
    from sqlalchemy import select

    async def events(session: Any) -> list[OutboxEvent]:
        query = select(OutboxEvent).where(
            OutboxEvent.type == "docking.interest", OutboxEvent.aggregate_id == deal_id
        )
        return list((await session.scalars(query)).all())

    assert len(await db.read(events)) == 1
    refused = await docking.post(
        f"/v1/demands/{demand['id']}/interests", {"deal_id": "deal_none"}, expect=422
    )
    assert refused["errors"][0]["code"] == "not_a_supply"
