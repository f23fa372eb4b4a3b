"""The deal state machine: from any sequence of actions, by anyone, the deal is only ever in a
state of the table, every change it makes is a row of the table, and a refusal changes nothing."""

from __future__ import annotations

import contextlib
import itertools
import secrets
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from exchange.assets import service as assets
from exchange.assets.schemas import AssetIn
from exchange.deals import service as deals
from exchange.deals.machine import (
    TRANSITIONS,
    Actor,
    DealAction,
    DealState,
    allowed_actions,
    transition,
)
from exchange.deals.rights import Check, RightsOffered
from exchange.errors import DomainError
from exchange.evidence import service as evidence
from exchange.parties.service import create_party
from exchange.pricing import rules as pricing

# Weighted towards the path forward, so sequences reach `priced` as well as the dead ends.
ACTIONS = [
    *DealAction,
    DealAction.submit,
    DealAction.confirm,
    DealAction.price,
    "record_checks",
    "record_checks",
    "value",
    "value",
]
ACTORS = [Actor.operator, Actor.operator, Actor.operator, Actor.seller, Actor.system]
STEP = st.tuples(st.sampled_from(ACTIONS), st.sampled_from(ACTORS))
FORWARD = [
    (DealAction.submit, Actor.seller),
    ("record_checks", Actor.operator),
    (DealAction.confirm, Actor.operator),
    ("value", Actor.operator),
]
# Half the sequences start down the path to `priced`, then wander.
SEQUENCES = st.builds(
    lambda head, tail: [*FORWARD[:head], *tail],
    st.sampled_from([0, 0, 1, 2, 3, 4]),
    st.lists(STEP, max_size=12),
)


@given(st.lists(st.sampled_from(list(DealAction)), max_size=30))
def test_table_walks_stay_inside_the_table(actions: list[DealAction]) -> None:
    state = DealState.draft
    for action in actions:
        found = transition(state, action)
        if found is None:
            assert action.value not in allowed_actions(state)
            continue
        assert action.value in allowed_actions(state)
        state = found.target
        assert state in DealState


def test_terminal_states_have_no_way_out() -> None:
    sources = {t.source for t in TRANSITIONS}
    assert DealState.rejected not in sources and DealState.withdrawn not in sources
    reachable = {DealState.draft} | {t.target for t in TRANSITIONS}
    assert reachable == set(DealState)


async def _setup(db: Any, clock: Any) -> str:
    seller = "pty-" + secrets.token_hex(6)

    async def unit(session: Any) -> str:
        now = clock.now()
        await create_party(session, party_id=seller, name="Seller", kind="university", now=now)
        body = AssetIn.model_validate(
            {
                "kind": "know_how",
                "title_en": "A process",
                "legal_status": "unregistered",
                "trl": 5,
                "export_control": "free",
                "owners": [{"party_id": seller, "share": "100"}],
            }
        )
        asset_id = "ast-" + secrets.token_hex(6)
        await assets.create_asset(session, asset_id, body, seller, now)
        deal_id = "deal-" + secrets.token_hex(6)
        spec = deals.DealSpec(
            asset_id, seller, RightsOffered.assignment, ["CN"], None, None, "english", "CNY"
        )
        ctx = deals.ActorContext(Actor.operator, None, None, now)
        await deals.create_deal(session, deal_id, spec, ctx)
        return deal_id

    return str(await db.run(unit))


async def _step(db: Any, clock: Any, root: Path, deal_id: str, name: Any, actor: Actor) -> None:
    ctx = deals.ActorContext(actor, "key_test", None, clock.now())

    async def unit(session: Any) -> None:
        if name == "record_checks":
            stored, _ = await evidence.store(
                session,
                root,
                secrets.token_bytes(16),
                media_type="application/pdf",
                filename=None,
                key_id="key_test",
                party_id=None,
                now=ctx.now,
            )
            for check in Check:
                await deals.record_check(
                    session,
                    deal_id,
                    check=check,
                    result="pass",
                    evidence_hashes=[stored.sha256],
                    note=None,
                    ctx=ctx,
                )
        elif name == "value":
            valuation = pricing.value_by_cost(
                pricing.CostInputs(replacement_cost=100_000, obsolescence_rate="0.1"), "CNY"
            )
            await deals.record_valuation(session, deal_id, valuation, ctx)
        elif name is DealAction.price:
            rows = await deals.valuations(session, deal_id)
            spec = deals.PriceSpec(rows[-1].id if rows else "val_none", 100_000, 95_000, "CNY")
            await deals.perform(session, deal_id, name, ctx, price=spec)
        else:
            await deals.perform(session, deal_id, name, ctx, reason="because")

    with contextlib.suppress(DomainError):
        await db.run(unit)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=SEQUENCES)
async def test_any_action_sequence_keeps_the_deal_inside_the_table(
    db: Any, clock: Any, settings: Any, steps: list[tuple[Any, Actor]]
) -> None:
    root = Path(settings.evidence_dir)
    deal_id = await _setup(db, clock)
    for name, actor in steps:
        before = await db.read(lambda s: deals.get_deal(s, deal_id))
        await _step(db, clock, root, deal_id, name, actor)
        after = await db.read(lambda s: deals.get_deal(s, deal_id))
        assert after.state in {s.value for s in DealState}
        event(f"reached {after.state}")
        if after.version == before.version:
            assert after.state == before.state
            continue
        assert after.version == before.version + 1
        rule = transition(DealState(before.state), DealAction(name))
        assert rule is not None and rule.target.value == after.state
        assert actor in rule.actors
    history = await db.read(lambda s: deals.history(s, deal_id))
    assert [h.version for h in history] == list(range(1, len(history) + 1))
    for previous, current in itertools.pairwise(history):
        assert previous.to_state == current.from_state
