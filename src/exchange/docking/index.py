"""The docking index (供需对接): ranks supplies for a demand and demands for a supply, in memory.

Shape: hard filters → recall (BM25 text postings, IPC prefix postings) → re-scoring with the fit
factors (``rules``) → top-k with component scores and matched terms.

Why an inverted index of our own: a newly listed supply must be findable within a second of its
outbox event, so one document's upsert or removal must touch only that document's terms. bm25s
builds a static sparse matrix over the whole corpus and cannot take a single-document change
without a rebuild. Here each side keeps per-term postings (numpy arrays of slots and term
frequencies, grown by doubling, removed from by swap-with-last), document frequencies (a posting
list's length), document lengths and filter columns; a query is a few vectorised passes over the
postings of its terms. Not thread-safe: one writer and readers in turn (one event loop).

Text relevance is Okapi BM25 (k1 = 1.2, b = 0.75) over the other side's documents, with one
deliberate change: the length normalisation counts the document's tokens that do *not* match the
query. Textbook BM25 penalises every added token, so appending words of the demand to a supply
could lower its score; with this change more matching text never does, while unrelated text still
dilutes. The raw score s is squashed to s/(s+c) with c = 0.75 x the query's own idf mass
(``rules.text_relevance``): never normalised by other documents' scores.

The index computes scores on arrays with the same arithmetic, in the same order, as the one-pair
reference (``_score``), then re-scores its best k + 8 with the reference itself; so it returns
exactly what ``brute_force_match`` returns, which scores every document.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from exchange.docking import rules
from exchange.docking.text import token_surfaces, tokens

__all__ = [
    "BM25_B",
    "BM25_K1",
    "K_MAX",
    "DockingIndex",
    "Document",
    "Filters",
    "Match",
    "brute_force_match",
]

Side = Literal["supply", "demand"]
SIDES: tuple[Side, Side] = ("supply", "demand")
BM25_K1 = 1.2
BM25_B = 0.75
K_MAX = 200  # results per query (the docking API asks for up to 150)
MATCHED_TERMS_MAX = 20  # terms listed per result
AMOUNT_MAX = 2**53 - 1  # minor units; floats stay exact below this
_RESCORE_MARGIN = 8  # candidates re-scored beyond k, against float ties at the cut
_BRUTE_FORCE_CACHE_MAX = 2**17  # analysed documents kept by brute_force_match

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]
SlotArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Document:
    """A supply (listing, asset) or a demand, as the domain feeds it to the index."""

    id: str  # e.g. "supply:deal_123" / "demand:dem_9"
    side: Side
    text: str  # titles, abstracts / problem description, any language mix
    keywords: tuple[str, ...] = ()
    ipc: tuple[str, ...] = ()
    trl: int | None = None  # supply: its TRL; demand: the minimum TRL wanted
    price_minor: int | None = None  # supply
    price_currency: str | None = None
    budget_min: int | None = None  # demand
    budget_max: int | None = None
    budget_currency: str | None = None
    region: str | None = None  # ISO 3166-2 code like "CN-SH"
    country: str = rules.DOMESTIC_COUNTRY  # the party's ISO 3166 country
    kind: str | None = None  # supply: asset kind (invention_patent, know_how, ...)
    rights: tuple[str, ...] = ()  # supply: rights offered; demand: rights wanted
    export_control: str | None = None  # supply: free | restricted | prohibited | None
    domestic_only: bool = False  # demand: only domestic supplies

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"document {self.id}: side must be supply or demand")
        if self.trl is not None and not rules.TRL_MIN <= self.trl <= rules.TRL_MAX:
            raise ValueError(f"document {self.id}: TRL must be 1..9")
        for amount in (self.price_minor, self.budget_min, self.budget_max):
            if amount is not None and not 0 <= amount <= AMOUNT_MAX:
                raise ValueError(f"document {self.id}: amounts must be 0..2^53-1 minor units")


@dataclass(frozen=True, slots=True)
class Filters:
    """Hard filters on the *results'* own fields (a supply's price, a demand's budget range)."""

    regions: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    price_min: int | None = None
    price_max: int | None = None
    currency: str | None = None  # with a price bound or alone: results priced in it (None → CNY)
    min_trl: int | None = None
    rights: frozenset[str] | None = None  # results offering (or wanting) one of these
    domestic_only: bool = False

    @property
    def on_price(self) -> bool:
        return self.price_min is not None or self.price_max is not None or self.currency is not None


@dataclass(frozen=True, slots=True)
class Match:
    document_id: str
    score: float
    components: dict[str, float]
    matched_terms: tuple[str, ...]
    ipc_depth: int


def _round6(x: Any) -> Any:
    """Rounding to 6 decimals, written so floats and numpy arrays round identically."""
    return (
        np.floor(x * 1e6 + 0.5) / 1e6
        if isinstance(x, np.ndarray)
        else math.floor(x * 1e6 + 0.5) / 1e6
    )


def _bm25_k(unmatched_len: Any, avgdl: float) -> Any:
    if avgdl <= 0:
        return BM25_K1 * (1.0 - BM25_B) + 0.0 * unmatched_len
    return BM25_K1 * (1.0 - BM25_B + BM25_B * unmatched_len / avgdl)


def _bm25_term(idf: Any, tf: Any, k: Any) -> Any:
    return idf * (tf * (BM25_K1 + 1.0)) / (tf + k)


def _idf(n_docs: int, df: int) -> float:
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def _other(side: Side) -> Side:
    return "demand" if side == "supply" else "supply"


# --- the reference scoring: one pair at a time -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Analysed:
    doc: Document
    tf: dict[str, int]
    length: int


def _doc_tokens(doc: Document) -> list[str]:
    out = tokens(doc.text)
    for keyword in doc.keywords:
        out.extend(tokens(keyword))
    return out


def _analyse(doc: Document) -> _Analysed:
    tf: dict[str, int] = {}
    terms = _doc_tokens(doc)
    for term in terms:
        tf[term] = tf.get(term, 0) + 1
    return _Analysed(doc=doc, tf=tf, length=len(terms))


_analyse_cached = lru_cache(maxsize=_BRUTE_FORCE_CACHE_MAX)(_analyse)


@dataclass(frozen=True, slots=True)
class _Query:
    doc: Document
    terms: tuple[str, ...]  # sorted, unique
    surfaces: dict[str, str]


def _prepare(query: Document, k: int) -> _Query:
    if not 1 <= k <= K_MAX:
        raise ValueError(f"k must be 1..{K_MAX}")
    surfaces = token_surfaces(query.text)
    for keyword in query.keywords:
        for token, surface in token_surfaces(keyword).items():
            surfaces.setdefault(token, surface)
    return _Query(doc=query, terms=tuple(sorted(surfaces)), surfaces=surfaces)


def _supply_demand(query: Document, doc: Document) -> tuple[Document, Document]:
    return (doc, query) if doc.side == "supply" else (query, doc)


def _passes(query: Document, doc: Document, filters: Filters) -> bool:
    """The hard filters for one result: the caller's filters and the pair's own constraints."""
    supply, demand = _supply_demand(query, doc)
    if not (
        rules.trl_meets(supply.trl, demand.trl)
        and rules.rights_meet(supply.rights, demand.rights)
        and rules.domestic_meets(supply.country, demand.domestic_only)
        and rules.export_eligible(supply.export_control, demand.country)
    ):
        return False
    if filters.regions is not None and doc.region not in filters.regions:
        return False
    if filters.kinds is not None and doc.kind not in filters.kinds:
        return False
    if filters.min_trl is not None and (doc.trl is None or doc.trl < filters.min_trl):
        return False
    if filters.rights is not None and filters.rights.isdisjoint(doc.rights):
        return False
    if filters.domestic_only and not rules.is_domestic(doc.country):
        return False
    return not filters.on_price or _price_passes(doc, filters)


def _price_passes(doc: Document, filters: Filters) -> bool:
    currency = filters.currency or rules.DEFAULT_CURRENCY
    if doc.side == "supply":
        return (
            doc.price_minor is not None
            and (doc.price_currency or rules.DEFAULT_CURRENCY) == currency
            and (filters.price_min is None or doc.price_minor >= filters.price_min)
            and (filters.price_max is None or doc.price_minor <= filters.price_max)
        )
    return (
        (doc.budget_min is not None or doc.budget_max is not None)
        and (doc.budget_currency or rules.DEFAULT_CURRENCY) == currency
        and (
            filters.price_min is None
            or doc.budget_max is None
            or doc.budget_max >= filters.price_min
        )
        and (
            filters.price_max is None
            or doc.budget_min is None
            or doc.budget_min <= filters.price_max
        )
    )


def _idf_mass(query: _Query, n_docs: int, df: dict[str, int]) -> float:
    """The sum of the idf of every query term (a term in no document counts with df 0)."""
    mass = 0.0
    for term in query.terms:
        mass += _idf(n_docs, df.get(term, 0))
    return mass


def _score(
    query: _Query, idf: dict[str, float], idf_mass: float, avgdl: float, cand: _Analysed
) -> Match | None:
    """The score of one candidate; None when it shares neither a term nor an IPC section."""
    matched = [t for t in query.terms if t in cand.tf]
    unmatched_len = cand.length - sum(cand.tf[t] for t in matched)
    k = _bm25_k(unmatched_len, avgdl)
    bm25 = 0.0
    contributions: list[tuple[float, str]] = []
    for term in matched:
        contribution = float(_bm25_term(idf[term], cand.tf[term], k))
        bm25 += contribution
        contributions.append((-contribution, term))
    ipc_score, depth = rules.ipc_overlap(query.doc.ipc, cand.doc.ipc)
    if not matched and depth == 0:
        return None
    supply, demand = _supply_demand(query.doc, cand.doc)
    components = {
        "text": rules.text_relevance(bm25, idf_mass),
        "ipc": ipc_score,
        "trl": rules.trl_fit(supply.trl, demand.trl),
        "budget": rules.budget_fit(
            supply.price_minor,
            supply.price_currency,
            demand.budget_min,
            demand.budget_max,
            demand.budget_currency,
        ),
        "region": rules.region_fit(supply.region, demand.region),
    }
    total = rules.combine(*(components[name] for name in rules.COMPONENTS))
    terms = [query.surfaces.get(term, term) for _, term in sorted(contributions)]
    return Match(
        document_id=cand.doc.id,
        score=_round6(total),
        components={name: _round6(value) for name, value in components.items()},
        matched_terms=tuple(dict.fromkeys(terms))[:MATCHED_TERMS_MAX],
        ipc_depth=depth,
    )


def _top(matches: Iterable[Match], k: int) -> list[Match]:
    return sorted(matches, key=lambda m: (-m.score, m.document_id))[:k]


def brute_force_match(
    docs: Iterable[Document], query: Document, *, k: int = 10, filters: Filters = Filters()
) -> list[Match]:
    """The reference: the index's scoring applied to every document of the other side, no recall
    shortcuts. The index must return exactly these top-k results."""
    prepared = _prepare(query, k)
    side = _other(query.side)
    analysed = [_analyse_cached(doc) for doc in docs if doc.side == side]
    n_docs = len(analysed)
    avgdl = sum(a.length for a in analysed) / n_docs if n_docs else 0.0
    df = dict.fromkeys(prepared.terms, 0)
    for a in analysed:
        for term in prepared.terms:
            if term in a.tf:
                df[term] += 1
    idf = {term: _idf(n_docs, n) for term, n in df.items() if n}
    idf_mass = _idf_mass(prepared, n_docs, df)
    results = (
        _score(prepared, idf, idf_mass, avgdl, a)
        for a in analysed
        if a.doc.id != query.id and _passes(query, a.doc, filters)
    )
    return _top((m for m in results if m is not None), k)


# --- the index ---------------------------------------------------------------------------------


class _Postings:
    """Slots (and term frequencies) of one term or IPC prefix; swap-with-last removal."""

    __slots__ = ("n", "slots", "tfs")

    def __init__(self) -> None:
        self.slots: IntArray = np.empty(4, np.int32)
        self.tfs: npt.NDArray[np.float32] = np.empty(4, np.float32)
        self.n = 0

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need > len(self.slots):
            size = max(need, 2 * len(self.slots))
            self.slots = np.resize(self.slots, size)
            self.tfs = np.resize(self.tfs, size)

    def add(self, slot: int, tf: int) -> None:
        self._reserve(1)
        self.slots[self.n] = slot
        self.tfs[self.n] = tf
        self.n += 1

    def extend(self, slots: list[int], tfs: list[int]) -> None:
        self._reserve(len(slots))
        self.slots[self.n : self.n + len(slots)] = slots
        self.tfs[self.n : self.n + len(slots)] = tfs
        self.n += len(slots)

    def remove(self, slot: int) -> None:
        (at,) = np.flatnonzero(self.slots[: self.n] == slot)  # exactly one posting per slot
        last = self.n - 1
        self.slots[at] = self.slots[last]
        self.tfs[at] = self.tfs[last]
        self.n = last


class _Codes:
    """Small integer codes for strings of one field; 0 is None."""

    def __init__(self) -> None:
        self.code_of: dict[str, int] = {}
        self.names: list[str | None] = [None]

    def code(self, name: str | None) -> int:
        if name is None:
            return 0
        code = self.code_of.get(name)
        if code is None:
            code = self.code_of[name] = len(self.names)
            self.names.append(name)
        return code

    def lookup(self, name: str | None) -> int:
        """The code of a name, or -1 for a name never seen (matches no document)."""
        return 0 if name is None else self.code_of.get(name, -1)


_COLUMNS: dict[str, Any] = {
    "alive": np.bool_,
    "length": np.float64,
    "region": np.int32,
    "kind": np.int32,
    "trl": np.int8,  # -1 unknown
    "price": np.float64,  # nan unknown
    "price_ccy": np.int32,
    "budget_min": np.float64,  # nan unknown
    "budget_max": np.float64,
    "budget_ccy": np.int32,
    "domestic": np.bool_,  # the party's country is CN
    "export_open": np.bool_,  # the supply may go to foreign demanders
    "domestic_only": np.bool_,
    "wants_rights": np.bool_,
}


@dataclass
class _Side:
    """One side's index: documents by slot, filter columns, term and IPC postings, BM25 stats."""

    side: Side
    capacity: int = 0
    size: int = 0  # slots ever used (live or on the free list), <= capacity
    free: list[int] = field(default_factory=list)
    slot_of: dict[str, int] = field(default_factory=dict)
    docs: list[Document | None] = field(default_factory=list)
    doc_terms: list[tuple[IntArray, npt.NDArray[np.int32]] | None] = field(default_factory=list)
    cols: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    rights: dict[str, BoolArray] = field(default_factory=dict)
    vocab: dict[str, int] = field(default_factory=dict)  # term → term id
    terms: list[str] = field(default_factory=list)  # term id → term
    postings: list[_Postings] = field(default_factory=list)
    ipc_postings: dict[str, _Postings] = field(default_factory=dict)
    total_len: int = 0
    codes: dict[str, _Codes] = field(
        default_factory=lambda: {name: _Codes() for name in ("region", "kind", "currency")}
    )

    def __post_init__(self) -> None:
        self._grow(1024)

    def _grow(self, capacity: int) -> None:
        for name, dtype in _COLUMNS.items():
            column = np.zeros(capacity, dtype)
            if name in self.cols:
                column[: self.capacity] = self.cols[name][: self.capacity]
            self.cols[name] = column
        for value, column in self.rights.items():
            grown = np.zeros(capacity, np.bool_)
            grown[: self.capacity] = column[: self.capacity]
            self.rights[value] = grown
        self.docs.extend([None] * (capacity - self.capacity))
        self.doc_terms.extend([None] * (capacity - self.capacity))
        self.capacity = capacity

    def _take_slot(self) -> int:
        if self.free:
            return self.free.pop()
        if self.size == self.capacity:
            self._grow(2 * self.capacity)
        self.size += 1
        return self.size - 1

    def add(self, doc: Document, term_freqs: dict[str, int]) -> tuple[int, list[int], list[int]]:
        """Place a document in a slot; returns the slot and its term ids and frequencies, for the
        caller to post (one at a time or in bulk)."""
        slot = self._take_slot()
        self.slot_of[doc.id] = slot
        self.docs[slot] = doc
        term_ids: list[int] = []
        for term in term_freqs:
            term_id = self.vocab.get(term)
            if term_id is None:
                term_id = self.vocab[term] = len(self.terms)
                self.terms.append(term)
                self.postings.append(_Postings())
            term_ids.append(term_id)
        freqs = list(term_freqs.values())
        self.doc_terms[slot] = (np.array(term_ids, np.int32), np.array(freqs, np.int32))
        length = sum(freqs)
        self.total_len += length
        self._set_columns(slot, doc, length)
        for prefix in {p for symbol in doc.ipc for p in rules.ipc_prefixes(symbol)}:
            self.ipc_postings.setdefault(prefix, _Postings()).add(slot, 1)
        return slot, term_ids, freqs

    def _set_columns(self, slot: int, doc: Document, length: int) -> None:
        c, codes = self.cols, self.codes
        c["alive"][slot] = True
        c["length"][slot] = length
        c["region"][slot] = codes["region"].code(doc.region)
        c["kind"][slot] = codes["kind"].code(doc.kind)
        c["trl"][slot] = -1 if doc.trl is None else doc.trl
        c["price"][slot] = math.nan if doc.price_minor is None else doc.price_minor
        c["price_ccy"][slot] = codes["currency"].code(doc.price_currency or rules.DEFAULT_CURRENCY)
        c["budget_min"][slot] = math.nan if doc.budget_min is None else doc.budget_min
        c["budget_max"][slot] = math.nan if doc.budget_max is None else doc.budget_max
        c["budget_ccy"][slot] = codes["currency"].code(
            doc.budget_currency or rules.DEFAULT_CURRENCY
        )
        c["domestic"][slot] = rules.is_domestic(doc.country)
        c["export_open"][slot] = rules.export_open_to_foreign(doc.export_control)
        c["domestic_only"][slot] = doc.domestic_only
        c["wants_rights"][slot] = bool(doc.rights)
        for value in doc.rights:
            if value not in self.rights:
                self.rights[value] = np.zeros(self.capacity, np.bool_)
            self.rights[value][slot] = True

    def remove(self, doc_id: str) -> None:
        slot = self.slot_of.pop(doc_id)
        doc, terms = self.docs[slot], self.doc_terms[slot]
        assert doc is not None and terms is not None
        term_ids, freqs = terms
        for term_id in term_ids.tolist():
            self.postings[term_id].remove(slot)
        for prefix in {p for symbol in doc.ipc for p in rules.ipc_prefixes(symbol)}:
            self.ipc_postings[prefix].remove(slot)
        for value in doc.rights:
            self.rights[value][slot] = False
        self.total_len -= int(freqs.sum())
        self.cols["alive"][slot] = False
        self.docs[slot] = None
        self.doc_terms[slot] = None
        self.free.append(slot)

    def analysed(self, slot: int) -> _Analysed:
        doc, terms = self.docs[slot], self.doc_terms[slot]
        assert doc is not None and terms is not None
        term_ids, freqs = terms
        tf = {self.terms[t]: f for t, f in zip(term_ids.tolist(), freqs.tolist(), strict=True)}
        return _Analysed(doc=doc, tf=tf, length=sum(tf.values()))

    # --- a query against this side ---

    def match(self, query: _Query, k: int, filters: Filters) -> list[Match]:
        n_docs = len(self.slot_of)
        avgdl = self.total_len / n_docs if n_docs else 0.0
        bm25, idf = self._bm25(query, n_docs, avgdl)
        idf_mass = _idf_mass(query, n_docs, self._df(query))
        depth = self._ipc_depth(query.doc.ipc)
        slots = np.flatnonzero(self._mask(query.doc, filters) & ((bm25 > 0) | (depth > 0)))
        if not len(slots):
            return []
        total = rules.combine(
            rules.text_relevance(bm25[slots], idf_mass),
            depth[slots] / rules.IPC_DEPTH_MAX,
            self._trl_fits(query.doc)[self.cols["trl"][slots] + 1],
            self._budget_fits(query.doc, slots),
            self._region_fits(query.doc)[self.cols["region"][slots]],
        )
        chosen = self._best(slots, _round6(total), k + _RESCORE_MARGIN)
        scored = (_score(query, idf, idf_mass, avgdl, self.analysed(slot)) for slot in chosen)
        return _top((m for m in scored if m is not None), k)

    def _df(self, query: _Query) -> dict[str, int]:
        df: dict[str, int] = {}
        for term in query.terms:
            term_id = self.vocab.get(term)
            df[term] = 0 if term_id is None else self.postings[term_id].n
        return df

    def _best(self, slots: SlotArray, score: FloatArray, want: int) -> list[int]:
        """The ``want`` best slots by (score desc, id asc)."""
        if len(slots) <= want:
            return [int(s) for s in slots]
        cut = np.partition(score, len(score) - want)[len(score) - want]
        above = slots[score > cut].tolist()
        tied = sorted(slots[score == cut].tolist(), key=self._doc_id)
        return [int(s) for s in above] + tied[: want - len(above)]

    def _doc_id(self, slot: int) -> str:
        doc = self.docs[slot]
        assert doc is not None
        return doc.id

    def _bm25(
        self, query: _Query, n_docs: int, avgdl: float
    ) -> tuple[FloatArray, dict[str, float]]:
        """Raw BM25 of every slot (0 where no term matches), and the idf of the query's terms."""
        lists: list[tuple[str, _Postings]] = []
        for term in query.terms:
            term_id = self.vocab.get(term)
            if term_id is not None and self.postings[term_id].n:
                lists.append((term, self.postings[term_id]))
        if not lists:
            return np.zeros(self.size), {}
        idf = {term: _idf(n_docs, postings.n) for term, postings in lists}
        slots = np.concatenate([p.slots[: p.n] for _, p in lists])
        tfs = np.concatenate([p.tfs[: p.n] for _, p in lists]).astype(np.float64)
        idfs = np.repeat([idf[term] for term, _ in lists], [p.n for _, p in lists])
        # Term after term in the query's order, as the reference sums them (same floats).
        matched = np.bincount(slots, weights=tfs, minlength=self.size).astype(np.float64)
        k = _bm25_k(self.cols["length"][: self.size] - matched, avgdl)
        contributions = _bm25_term(idfs, tfs, k[slots])
        bm25 = np.bincount(slots, weights=contributions, minlength=self.size)
        return bm25.astype(np.float64, copy=False), idf

    def _ipc_depth(self, symbols: Sequence[str]) -> npt.NDArray[np.int8]:
        depth = np.zeros(self.size, np.int8)
        prefixes = sorted(
            {(level, p) for s in symbols for level, p in enumerate(rules.ipc_prefixes(s), 1)}
        )
        for level, prefix in prefixes:  # shallow first, so deeper levels overwrite
            postings = self.ipc_postings.get(prefix)
            if postings is not None:
                depth[postings.slots[: postings.n]] = level
        return depth

    def _mask(self, query: Document, filters: Filters) -> BoolArray:
        """Slots that pass every hard filter (the same rules as ``_passes``, on columns)."""
        n = self.size
        c = {name: column[:n] for name, column in self.cols.items()}
        mask: BoolArray = c["alive"].copy()
        own = self.slot_of.get(query.id)
        if own is not None:
            mask[own] = False
        if self.side == "supply":  # a demand asks
            if query.trl is not None:
                mask &= c["trl"] >= query.trl
            if query.rights:
                mask &= self._any_rights(query.rights)
            if query.domestic_only:
                mask &= c["domestic"]
            if not rules.is_domestic(query.country):
                mask &= c["export_open"]
        else:  # a supply asks which demands it can serve
            mask &= c["trl"] == -1 if query.trl is None else c["trl"] <= query.trl
            mask &= ~c["wants_rights"] | self._any_rights(query.rights)
            if not rules.is_domestic(query.country):
                mask &= ~c["domestic_only"]
            if not rules.export_open_to_foreign(query.export_control):
                mask &= c["domestic"]
        if filters.regions is not None:
            mask &= np.isin(c["region"], [self.codes["region"].lookup(r) for r in filters.regions])
        if filters.kinds is not None:
            mask &= np.isin(c["kind"], [self.codes["kind"].lookup(k) for k in filters.kinds])
        if filters.min_trl is not None:
            mask &= (c["trl"] != -1) & (c["trl"] >= filters.min_trl)
        if filters.rights is not None:
            mask &= self._any_rights(filters.rights)
        if filters.domestic_only:
            mask &= c["domestic"]
        if filters.on_price:
            mask &= self._price_mask(filters, c)
        return mask

    def _any_rights(self, values: Iterable[str]) -> BoolArray:
        out = np.zeros(self.size, np.bool_)
        for value in values:
            column = self.rights.get(value)
            if column is not None:
                out |= column[: self.size]
        return out

    def _price_mask(self, filters: Filters, c: dict[str, npt.NDArray[Any]]) -> BoolArray:
        currency = self.codes["currency"].lookup(filters.currency or rules.DEFAULT_CURRENCY)
        low, high = filters.price_min, filters.price_max
        if self.side == "supply":
            price = c["price"]
            mask: BoolArray = ~np.isnan(price) & (c["price_ccy"] == currency)
            if low is not None:
                mask &= price >= low
            if high is not None:
                mask &= price <= high
            return mask
        bmin, bmax = c["budget_min"], c["budget_max"]
        mask = (~np.isnan(bmin) | ~np.isnan(bmax)) & (c["budget_ccy"] == currency)
        if low is not None:
            mask &= np.isnan(bmax) | (bmax >= low)
        if high is not None:
            mask &= np.isnan(bmin) | (bmin <= high)
        return mask

    def _trl_fits(self, query: Document) -> FloatArray:
        """TRL fit by the result's TRL column + 1 (index 0: unknown)."""
        levels: list[int | None] = [None, *range(0, rules.TRL_MAX + 1)]
        if self.side == "supply":
            return np.array([rules.trl_fit(t, query.trl) for t in levels])
        return np.array([rules.trl_fit(query.trl, t) for t in levels])

    def _region_fits(self, query: Document) -> FloatArray:
        names = self.codes["region"].names
        if self.side == "supply":
            return np.array([rules.region_fit(name, query.region) for name in names])
        return np.array([rules.region_fit(query.region, name) for name in names])

    def _budget_fits(self, query: Document, slots: SlotArray) -> FloatArray:
        """``rules.budget_fit`` on columns, with the same arithmetic."""
        c = self.cols
        fit = np.full(len(slots), rules.NEUTRAL)
        if self.side == "supply":  # prices vary, the budget is the query's
            if query.budget_min is None and query.budget_max is None:
                return fit
            price = c["price"][slots]
            currency = self.codes["currency"].lookup(
                query.budget_currency or rules.DEFAULT_CURRENCY
            )
            comparable = ~np.isnan(price) & (c["price_ccy"][slots] == currency)
            if query.budget_max is None:
                fit[comparable] = 1.0
                return fit
            budget_max = float(query.budget_max)
            fit[comparable & (price <= budget_max)] = 1.0
            over = comparable & (price > budget_max)
            if budget_max <= 0:
                fit[over] = 0.0
            else:
                ratio = budget_max / price[over]
                fit[over] = ratio * ratio
            return fit
        if query.price_minor is None:  # budgets vary, the price is the query's
            return fit
        price_minor = float(query.price_minor)
        bmin, bmax = c["budget_min"][slots], c["budget_max"][slots]
        currency = self.codes["currency"].lookup(query.price_currency or rules.DEFAULT_CURRENCY)
        comparable = (~np.isnan(bmin) | ~np.isnan(bmax)) & (c["budget_ccy"][slots] == currency)
        no_max = np.isnan(bmax)
        fit[comparable & (no_max | (price_minor <= bmax))] = 1.0
        over = comparable & ~no_max & (price_minor > bmax)
        fit[over & (bmax <= 0)] = 0.0
        positive = over & (bmax > 0)
        ratio = bmax[positive] / price_minor
        fit[positive] = ratio * ratio
        return fit


class DockingIndex:
    """Supplies and demands, each side indexed for the other to query. Derived from the database:
    built at start (``extend``) and kept fresh from outbox events (``upsert``, ``remove``)."""

    def __init__(self, docs: Iterable[Document] = ()) -> None:
        self._sides: dict[Side, _Side] = {side: _Side(side) for side in SIDES}
        self._side_of: dict[str, Side] = {}
        self.extend(docs)

    def upsert(self, doc: Document) -> None:
        """Add a document, or replace the one with its id: only its own postings change."""
        term_freqs = _analyse(doc).tf  # before any change: a failure leaves the index as it was
        self.remove(doc.id)
        side = self._sides[doc.side]
        slot, term_ids, freqs = side.add(doc, term_freqs)
        for term_id, freq in zip(term_ids, freqs, strict=True):
            side.postings[term_id].add(slot, freq)
        self._side_of[doc.id] = doc.side

    def extend(self, docs: Iterable[Document]) -> None:
        """Upsert many documents; postings are appended term by term at the end (the bulk build)."""
        pending: dict[tuple[Side, int], tuple[list[int], list[int]]] = {}
        try:
            for doc in docs:
                term_freqs = _analyse(doc).tf
                if doc.id in self._side_of:
                    self._post(pending)
                    self.remove(doc.id)
                slot, term_ids, freqs = self._sides[doc.side].add(doc, term_freqs)
                for term_id, freq in zip(term_ids, freqs, strict=True):
                    slots, tfs = pending.setdefault((doc.side, term_id), ([], []))
                    slots.append(slot)
                    tfs.append(freq)
                self._side_of[doc.id] = doc.side
        finally:  # the documents placed so far stay consistent, whatever stopped the loop
            self._post(pending)

    def _post(self, pending: dict[tuple[Side, int], tuple[list[int], list[int]]]) -> None:
        for (side, term_id), (slots, tfs) in pending.items():
            self._sides[side].postings[term_id].extend(slots, tfs)
        pending.clear()

    def remove(self, doc_id: str) -> None:
        """Remove a document; removing an absent one does nothing (events may be replayed)."""
        side = self._side_of.pop(doc_id, None)
        if side is not None:
            self._sides[side].remove(doc_id)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._side_of

    def __len__(self) -> int:
        return len(self._side_of)

    def get(self, doc_id: str) -> Document | None:
        side = self._side_of.get(doc_id)
        if side is None:
            return None
        index = self._sides[side]
        return index.docs[index.slot_of[doc_id]]

    def documents(self) -> list[Document]:
        """Every indexed document (for brute-force checks and rebuilds)."""
        return [d for side in self._sides.values() for d in side.docs if d is not None]

    def match(self, query: Document, *, k: int = 10, filters: Filters = Filters()) -> list[Match]:
        """The top-k documents of the other side for ``query``, best first (score desc, then id).
        No result breaks a hard filter; agrees with ``brute_force_match`` on the same documents."""
        prepared = _prepare(query, k)
        return self._sides[_other(query.side)].match(prepared, k, filters)
