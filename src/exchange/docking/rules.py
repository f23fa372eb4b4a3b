"""Pure rules of docking (供需对接): component scores in [0, 1], their weights, the hard filters.

Every component is non-decreasing in how well a supply fits the demand, and the total is a weighted
sum of components, so improving a supply on one factor never lowers its score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

__all__ = [
    "COMPONENTS",
    "DEFAULT_CURRENCY",
    "DOMESTIC_COUNTRY",
    "IPC_DEPTH_MAX",
    "TEXT_HALF_PER_IDF",
    "TRL_MAX",
    "TRL_MIN",
    "WEIGHTS",
    "YANGTZE_DELTA",
    "budget_fit",
    "combine",
    "domestic_meets",
    "export_eligible",
    "export_open_to_foreign",
    "ipc_depth",
    "ipc_overlap",
    "ipc_prefixes",
    "is_domestic",
    "region_fit",
    "rights_meet",
    "text_relevance",
    "trl_fit",
    "trl_meets",
]

YANGTZE_DELTA: Final = frozenset({"CN-SH", "CN-JS", "CN-ZJ", "CN-AH"})  # ISO 3166-2:CN
DOMESTIC_COUNTRY: Final = "CN"
DEFAULT_CURRENCY: Final = "CNY"  # a price or budget without a currency is in yuan
TRL_MIN: Final = 1
TRL_MAX: Final = 9
IPC_DEPTH_MAX: Final = 4  # section, class, subclass, main group
# Text relevance is 0.5 where the raw BM25 score is this many times the query's idf mass (the sum
# of its terms' idf): a document holding every query term once, in little other text, gets ~0.7.
TEXT_HALF_PER_IDF: Final = 0.75

COMPONENTS: Final = ("text", "ipc", "trl", "budget", "region")
WEIGHTS: Final[dict[str, float]] = {
    "text": 0.45,
    "ipc": 0.25,
    "trl": 0.10,
    "budget": 0.10,
    "region": 0.10,
}
assert tuple(WEIGHTS) == COMPONENTS
assert abs(sum(WEIGHTS.values()) - 1.0) < 1e-12
assert all(w > 0 for w in WEIGHTS.values())

# Region fit: same region, both in the Yangtze River Delta (长三角), one of them in it, otherwise.
REGION_SAME: Final = 1.0
REGION_BOTH_IN_DELTA: Final = 0.8
REGION_ONE_IN_DELTA: Final = 0.5
REGION_OTHER: Final = 0.3
NEUTRAL: Final = 0.5  # a factor that cannot be judged (unknown price, foreign currency, ...)

_EXPORT_OPEN: Final = frozenset({"free", "restricted"})
_IPC = re.compile(r"([A-H])(?:(\d{2})(?:([A-Z])(?:(\d{1,4})(?:/(\d{1,6}))?)?)?)?")


# Scores are floats here, and arrays of them in the index: the same arithmetic gives the same bits.
Score = TypeVar("Score", float, npt.NDArray[np.float64])


def combine(text: Score, ipc: Score, trl: Score, budget: Score, region: Score) -> Score:
    """The score: a weighted sum, in a fixed order."""
    return (
        WEIGHTS["text"] * text
        + WEIGHTS["ipc"] * ipc
        + WEIGHTS["trl"] * trl
        + WEIGHTS["budget"] * budget
        + WEIGHTS["region"] * region
    )


def text_relevance(bm25: Score, idf_mass: float) -> Score:
    """Raw BM25 s squashed to [0, 1) by s/(s+c), c = 0.75 x the query's idf mass: monotone in s,
    comparable across short and long queries, and independent of other documents' scores."""
    return bm25 / (bm25 + max(TEXT_HALF_PER_IDF * idf_mass, 1e-9))


@lru_cache(maxsize=65_536)
def ipc_prefixes(symbol: str) -> tuple[str, ...]:
    """The prefixes of an IPC symbol, one per depth: "G06N 3/08" → ("G", "G06", "G06N", "G06N 3").

    Spaces and case are forgiven ("g06n3/08"); a symbol that is not IPC gives ().
    """
    match = _IPC.fullmatch(re.sub(r"\s+", "", symbol).upper())
    if match is None:
        return ()
    section, klass, subclass, group, _ = match.groups()
    prefixes = [section]
    if klass is not None:
        prefixes.append(section + klass)
        if subclass is not None:
            prefixes.append(prefixes[-1] + subclass)
            if group is not None:
                prefixes.append(f"{prefixes[-1]} {int(group)}")
    return tuple(prefixes)


def ipc_depth(a: Sequence[str], b: Sequence[str]) -> int:
    """The deepest shared prefix over all pairs of symbols: 0 none … 4 same main group."""
    prefixes_a = [ipc_prefixes(s) for s in a]
    prefixes_b = [ipc_prefixes(s) for s in b]
    best = 0
    for pa in prefixes_a:
        for pb in prefixes_b:
            depth = 0
            for x, y in zip(pa, pb, strict=False):
                if x != y:
                    break
                depth += 1
            best = max(best, depth)
    return best


def ipc_overlap(a: Sequence[str], b: Sequence[str]) -> tuple[float, int]:
    """(depth/4, depth): the best shared prefix (section, class, subclass, main group)."""
    depth = ipc_depth(a, b)
    return depth / IPC_DEPTH_MAX, depth


def trl_fit(supply_trl: int | None, demand_min_trl: int | None) -> float:
    """Technology readiness fit. At or above the demand's minimum: 1. Below it: 0.25 less per level
    missing. No minimum: maturity itself, 0.5 at TRL 1 rising to 1 at TRL 9. Unknown TRL: 0.5."""
    if supply_trl is None:
        return NEUTRAL
    if demand_min_trl is None:
        return 0.5 + 0.5 * (supply_trl - TRL_MIN) / (TRL_MAX - TRL_MIN)
    missing = demand_min_trl - supply_trl
    if missing <= 0:
        return 1.0
    return max(0.0, 1.0 - 0.25 * missing)


def budget_fit(
    price_minor: int | None,
    price_currency: str | None,
    budget_min: int | None,
    budget_max: int | None,
    budget_currency: str | None,
) -> float:
    """Budget-to-price fit. 1 up to the budget's maximum (below the minimum still fits); above
    it, (max/price)²: 0.64 at 1.25 times the maximum, 0.25 at twice. Unknown price, no budget,
    or another currency (no FX here): 0.5. A missing currency means yuan."""
    if price_minor is None or (budget_min is None and budget_max is None):
        return NEUTRAL
    if (price_currency or DEFAULT_CURRENCY) != (budget_currency or DEFAULT_CURRENCY):
        return NEUTRAL
    if budget_max is None or price_minor <= budget_max:
        return 1.0
    if budget_max <= 0:
        return 0.0
    ratio = budget_max / price_minor
    return ratio * ratio


def region_fit(supply_region: str | None, demand_region: str | None) -> float:
    """Proximity with a Yangtze River Delta preference: same region 1, both in the delta 0.8, one of
    them in the delta 0.5, otherwise (or unknown) 0.3."""
    if supply_region is not None and supply_region == demand_region:
        return REGION_SAME
    in_delta = (supply_region in YANGTZE_DELTA) + (demand_region in YANGTZE_DELTA)
    if in_delta == 2:
        return REGION_BOTH_IN_DELTA
    if in_delta == 1:
        return REGION_ONE_IN_DELTA
    return REGION_OTHER


def is_domestic(country: str) -> bool:
    return country.upper() == DOMESTIC_COUNTRY


def export_open_to_foreign(export_control: str | None) -> bool:
    """Whether a supply may go abroad: "free" or "restricted" (not "prohibited" nor unrecorded)."""
    return export_control is not None and export_control.lower() in _EXPORT_OPEN


def export_eligible(export_control: str | None, demander_country: str) -> bool:
    """Export control (出口管制) as a hard filter: domestic demanders always; foreign ones only when
    the supply is open to foreign parties."""
    return is_domestic(demander_country) or export_open_to_foreign(export_control)


def trl_meets(supply_trl: int | None, demand_min_trl: int | None) -> bool:
    """A demand's minimum TRL as a hard filter: a supply of unknown TRL does not meet a minimum."""
    return demand_min_trl is None or (supply_trl is not None and supply_trl >= demand_min_trl)


def rights_meet(offered: Sequence[str], wanted: Sequence[str]) -> bool:
    """Rights as a hard filter: a demand wanting some rights needs a supply offering one of them."""
    return not wanted or not set(offered).isdisjoint(wanted)


def domestic_meets(supply_country: str, domestic_only: bool) -> bool:
    return not domestic_only or is_domestic(supply_country)
