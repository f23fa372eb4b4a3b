"""Supply-demand docking (供需对接): a pure, in-memory matcher of supplies and demands.

``DockingIndex`` ranks the other side's documents for a supply or a demand, with hard filters and
an explanation per result; ``brute_force_match`` is the reference it agrees with. No database and
no HTTP here: the domain feeds ``Document`` values built from its rows and outbox events.
"""

from exchange.docking.index import (
    DockingIndex,
    Document,
    Filters,
    Match,
    brute_force_match,
)
from exchange.docking.rules import WEIGHTS, YANGTZE_DELTA
from exchange.docking.text import tokens

__all__ = [
    "WEIGHTS",
    "YANGTZE_DELTA",
    "DockingIndex",
    "Document",
    "Filters",
    "Match",
    "brute_force_match",
    "tokens",
]
