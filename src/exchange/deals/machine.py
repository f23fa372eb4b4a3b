"""The deal's state machine: one table of (state, action) → next state, with who may act.

The API, the OpenAPI descriptions, the `GET /v1/deals/state-machine` document and the tests all
read this table. Guards (rights checks, valuations) live in the service; this table decides
only whether an action is possible at all from a state.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DealState(StrEnum):
    draft = "draft"
    rights_review = "rights_review"
    rights_confirmed = "rights_confirmed"
    rejected = "rejected"
    priced = "priced"
    listed = "listed"  # public notice (挂牌公告)
    bidding = "bidding"
    awarded = "awarded"
    unsold = "unsold"
    contracted = "contracted"
    settling = "settling"  # payments arriving in escrow
    settled = "settled"  # escrow paid out to the seller, the exchange and the inventors
    closed = "closed"  # the rights transfer registered
    defaulted = "defaulted"
    withdrawn = "withdrawn"


class DealAction(StrEnum):
    submit = "submit"
    confirm = "confirm"
    reject = "reject"
    price = "price"
    withdraw = "withdraw"
    list = "list"
    amend_listing = "amend_listing"  # changed terms restart the notice
    extend_notice = "extend_notice"
    open_bidding = "open_bidding"
    award = "award"
    close_unsold = "close_unsold"
    relist = "relist"
    sign_contract = "sign_contract"
    pay = "pay"
    settle = "settle"
    record_transfer = "record_transfer"
    default = "default"
    reopen_review = "reopen_review"  # the asset's rights changed after review


class Actor(StrEnum):
    seller = "seller"  # a member of the selling party
    operator = "operator"  # exchange staff (operator or admin)
    system = "system"  # the engine itself


@dataclass(frozen=True, slots=True)
class Transition:
    source: DealState
    action: DealAction
    target: DealState
    actors: frozenset[Actor]
    guard: str  # what must hold, in words (the service enforces it)


_S, _A = DealState, DealAction
_SELLER_OR_OPERATOR = frozenset({Actor.seller, Actor.operator})
_OPERATOR = frozenset({Actor.operator})
_SYSTEM = frozenset({Actor.system})

TRANSITIONS: tuple[Transition, ...] = (
    Transition(
        _S.draft,
        _A.submit,
        _S.rights_review,
        _SELLER_OR_OPERATOR,
        "the seller owns a share of the asset",
    ),
    Transition(
        _S.rights_review,
        _A.confirm,
        _S.rights_confirmed,
        _OPERATOR,
        "every rights check recorded as passed for the current asset, and none "
        "contradicted by the records",
    ),
    Transition(_S.rights_review, _A.reject, _S.rejected, _OPERATOR, "a reason is given"),
    Transition(
        _S.rights_confirmed,
        _A.price,
        _S.priced,
        _SELLER_OR_OPERATOR,
        "a valuation of this deal is chosen; the listing price is not below it; an "
        "auction has a reserve",
    ),
    Transition(
        _S.rights_confirmed,
        _A.reopen_review,
        _S.rights_review,
        _SYSTEM,
        "the asset's rights changed",
    ),
    Transition(
        _S.priced, _A.reopen_review, _S.rights_review, _SYSTEM, "the asset's rights changed"
    ),
    Transition(
        _S.priced,
        _A.list,
        _S.listed,
        _SELLER_OR_OPERATOR,
        "the listing terms are valid: notice period and extension at least the rules' minimum "
        "in working days, the first listing price not below the appraised value, a reserve "
        "for auctions and tenders",
    ),
    Transition(
        _S.listed,
        _A.amend_listing,
        _S.listed,
        _SELLER_OR_OPERATOR,
        "the notice has not ended; the notice restarts, and a changed deposit releases the "
        "registered deposits",
    ),
    Transition(
        _S.listed,
        _A.extend_notice,
        _S.listed,
        _SYSTEM,
        "the notice ended with no qualified party and the listing has an extension left",
    ),
    Transition(
        _S.listed,
        _A.open_bidding,
        _S.bidding,
        _SYSTEM,
        "the notice ended with two or more qualified parties",
    ),
    Transition(
        _S.listed,
        _A.award,
        _S.awarded,
        _SYSTEM,
        "the notice ended with one qualified party: a negotiated transfer (场内协议转让) at the "
        "listing price; its deposit goes to escrow",
    ),
    Transition(
        _S.listed,
        _A.close_unsold,
        _S.unsold,
        _SYSTEM,
        "the notice ended with no qualified party and no extension left",
    ),
    Transition(
        _S.bidding,
        _A.award,
        _S.awarded,
        _SYSTEM,
        "the auction closed with a winner (reserve met); its deposit goes to escrow, the "
        "others are released",
    ),
    Transition(
        _S.bidding,
        _A.close_unsold,
        _S.unsold,
        _SYSTEM,
        "the auction closed without a winner (no bid, or the reserve not met)",
    ),
    Transition(
        _S.unsold,
        _A.relist,
        _S.listed,
        _SELLER_OR_OPERATOR,
        "the listing terms are valid; a price below 90% of the appraised value only with an "
        "operator's approval recorded",
    ),
    Transition(
        _S.awarded,
        _A.sign_contract,
        _S.contracted,
        _SELLER_OR_OPERATOR,
        "within the contract deadline after the award; the price is the award price; the "
        "payment schedule sums to it and keeps the instalment rules",
    ),
    Transition(
        _S.contracted,
        _A.pay,
        _S.settling,
        _SYSTEM,
        "the buyer's first payment into escrow, no more than is due",
    ),
    Transition(
        _S.settling,
        _A.pay,
        _S.settling,
        _SYSTEM,
        "a further payment into escrow, no more than is due",
    ),
    Transition(
        _S.settling,
        _A.settle,
        _S.settled,
        _SYSTEM,
        "every instalment is in escrow: one linked batch pays the seller (net), the exchange's "
        "fee and the inventors' rewards",
    ),
    Transition(
        _S.settled,
        _A.record_transfer,
        _S.closed,
        _OPERATOR,
        "the patent office's registration of the transfer or licence (number, date, evidence)",
    ),
    *(
        Transition(
            state,
            _A.default,
            _S.defaulted,
            _OPERATOR,
            "the buyer missed the contract deadline or an instalment: its deposit is forfeited "
            "by rule and everything else held is released",
        )
        for state in (_S.awarded, _S.contracted, _S.settling)
    ),
    Transition(
        _S.defaulted,
        _A.relist,
        _S.listed,
        _SELLER_OR_OPERATOR,
        "as for an unsold deal",
    ),
    *(
        Transition(
            state,
            _A.withdraw,
            _S.withdrawn,
            _SELLER_OR_OPERATOR,
            "every deposit held for the deal is released",
        )
        for state in (
            _S.draft,
            _S.rights_review,
            _S.rights_confirmed,
            _S.priced,
            _S.listed,
            _S.bidding,
            _S.unsold,
        )
    ),
)

_TABLE: dict[tuple[DealState, DealAction], Transition] = {
    (t.source, t.action): t for t in TRANSITIONS
}
assert len(_TABLE) == len(TRANSITIONS), "one transition per (state, action)"


def transition(state: DealState, action: DealAction) -> Transition | None:
    return _TABLE.get((state, action))


def allowed_actions(state: DealState, actors: frozenset[Actor] | None = None) -> list[str]:
    """Actions possible from `state` (for `actors`, when given), in table order."""
    return [
        t.action.value
        for t in TRANSITIONS
        if t.source is state and (actors is None or t.actors & actors)
    ]


def next_state(state: DealState, action: DealAction) -> DealState:
    found = transition(state, action)
    assert found is not None, f"{action} is not allowed from {state}"
    return found.target
