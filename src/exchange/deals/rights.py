"""Rights confirmation (确权) rules: what the records say about each check of the checklist.

Pure functions over plain values, so each rule is testable without a database. A reviewer
records each check with evidence; a check recorded as passed must also agree with the records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Check(StrEnum):
    ownership = "ownership"  # the seller is an owner of the asset
    status_valid = "status_valid"  # the right is in force (or applied for)
    term_within_validity = "term_within_validity"  # the right outlives the offered term
    co_owners_consented = "co_owners_consented"  # every co-owner consented, where needed
    no_exclusive_conflict = "no_exclusive_conflict"  # no licence granted excludes the offer
    pledgee_consented = "pledgee_consented"  # every registered pledgee consented
    export_control_recorded = "export_control_recorded"  # free / restricted / prohibited known


class RightsOffered(StrEnum):
    assignment = "assignment"
    exclusive_licence = "exclusive_licence"
    sole_licence = "sole_licence"
    non_exclusive_licence = "non_exclusive_licence"
    equity_contribution = "equity_contribution"


LICENCES = frozenset(
    {
        RightsOffered.exclusive_licence,
        RightsOffered.sole_licence,
        RightsOffered.non_exclusive_licence,
    }
)
WORLDWIDE = "*"


@dataclass(frozen=True, slots=True)
class GrantedLicence:
    kind: str  # exclusive | sole | non_exclusive
    territory: tuple[str, ...]
    start_date: date
    end_date: date | None


@dataclass(frozen=True, slots=True)
class Pledge:
    pledgee_party_id: str
    registered: bool


@dataclass(frozen=True, slots=True)
class Facts:
    """What the records say, gathered by the service."""

    seller_party_id: str
    owners: dict[str, int]  # party id → share in basis points
    legal_status_valid: bool
    expiry_date: date | None
    licences: Sequence[GrantedLicence]
    pledges: Sequence[Pledge]
    export_control: str | None
    rights_offered: RightsOffered
    territory: tuple[str, ...]
    term_start_date: date | None
    term_end_date: date | None
    today: date
    consents: frozenset[tuple[str, str]]  # (party id, "co_owner" | "pledgee")


def _overlap_territory(a: Sequence[str], b: Sequence[str]) -> bool:
    return WORLDWIDE in a or WORLDWIDE in b or bool(set(a) & set(b))


def _overlap_time(start_a: date, end_a: date | None, start_b: date, end_b: date | None) -> bool:
    return (end_a is None or start_b <= end_a) and (end_b is None or start_a <= end_b)


def _conflicts(granted: GrantedLicence, facts: Facts) -> bool:
    if facts.rights_offered not in LICENCES:
        return False  # an assignment passes the asset subject to its licences
    excluding = (
        {"exclusive"}
        if facts.rights_offered is RightsOffered.non_exclusive_licence
        else {"exclusive", "sole"}
    )
    start = facts.term_start_date or facts.today
    return (
        granted.kind in excluding
        and _overlap_territory(granted.territory, facts.territory)
        and _overlap_time(granted.start_date, granted.end_date, start, facts.term_end_date)
    )


def evaluate(facts: Facts) -> dict[Check, str | None]:
    """For each check, None when the records support it, else the reason they do not."""
    co_owners = sorted(p for p in facts.owners if p != facts.seller_party_id)
    needs_all = facts.rights_offered is not RightsOffered.non_exclusive_licence
    missing_owners = [p for p in co_owners if (p, "co_owner") not in facts.consents]
    registered = sorted({p.pledgee_party_id for p in facts.pledges if p.registered})
    missing_pledgees = [p for p in registered if (p, "pledgee") not in facts.consents]
    conflicts = [g for g in facts.licences if _conflicts(g, facts)]
    term_end = facts.term_end_date or facts.today
    return {
        Check.ownership: None
        if facts.owners.get(facts.seller_party_id, 0) > 0
        else "the seller is not an owner of the asset",
        Check.status_valid: None
        if facts.legal_status_valid
        else "the asset's legal status is not in force",
        Check.term_within_validity: None
        if facts.expiry_date is None or facts.expiry_date > term_end
        else f"the right expires on {facts.expiry_date}, before the offered term ends",
        Check.co_owners_consented: None
        if not needs_all or not missing_owners
        else f"no consent recorded from co-owner(s) {', '.join(missing_owners)}",
        Check.no_exclusive_conflict: None
        if not conflicts
        else f"conflicts with a {conflicts[0].kind} licence granted from "
        f"{conflicts[0].start_date} in {', '.join(conflicts[0].territory)}",
        Check.pledgee_consented: None
        if not missing_pledgees
        else f"no consent recorded from pledgee(s) {', '.join(missing_pledgees)}",
        Check.export_control_recorded: None
        if facts.export_control is not None
        else "the export-control class is not recorded",
    }
