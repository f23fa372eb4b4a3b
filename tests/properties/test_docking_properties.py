"""Property tests of the docking index on random small corpora: no result breaks a hard filter;
improving a supply on any one factor never lowers its score; the index agrees with brute force,
also after random upserts and removals."""

# ruff: noqa: SIM905 - word lists read best as text

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from exchange.docking import DockingIndex, Document, Filters, brute_force_match, tokens
from exchange.docking.index import K_MAX

QUICK = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Words of both languages, many of them glossary terms, so random texts overlap across languages.
VOCABULARY = (
    *"固态电池 全固态电池 电解质 电解 锂 电池 神经网络 卷积神经网络 芯片 疫苗 抗体 石墨烯 "
    "催化剂 机器人 传感器 光伏 方法 装置 系统 材料".split(),
    *"solid-state battery|electrolyte|lithium|neural network|chip|vaccine|antibody|graphene|"
    "catalyst|robot|sensor|photovoltaic|method|device|system|electrolysis|deep learning|the|of|"
    "5G|2024".split("|"),
)
IPC = ("G06N 3/08", "G06N 3/04", "G06N 5/02", "G06F 16/00", "G01N 21/00", "H01M 10/052")
IPC += ("H01M 4/58", "A61K 39/12", "C01B 32/182")
REGIONS = (None, "CN-SH", "CN-JS", "CN-ZJ", "CN-AH", "CN-BJ", "CN-GD")
DELTA = ("CN-SH", "CN-JS", "CN-ZJ", "CN-AH")
KINDS = (None, "invention_patent", "know_how", "software")
RIGHTS = ("assignment", "exclusive_licence", "non_exclusive_licence")
CURRENCIES = (None, "CNY", "USD")

words = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6)
amount = st.none() | st.integers(min_value=0, max_value=10**9)
trl = st.none() | st.integers(min_value=1, max_value=9)
rarely_trl = st.none() | st.none() | st.integers(min_value=1, max_value=9)


def text_of(chosen: list[str]) -> str:
    """Each word its own clause, so appending a word adds exactly that word's tokens."""
    return "。".join(chosen)


@st.composite
def supplies(draw: st.DrawFn, id: str) -> Document:
    return Document(
        id=id,
        side="supply",
        text=text_of(draw(words)),
        keywords=tuple(draw(st.lists(st.sampled_from(VOCABULARY), max_size=2))),
        ipc=tuple(draw(st.lists(st.sampled_from(IPC), max_size=2, unique=True))),
        trl=draw(trl),
        price_minor=draw(amount),
        price_currency=draw(st.sampled_from(CURRENCIES)),
        region=draw(st.sampled_from(REGIONS)),
        country=draw(st.sampled_from(("CN", "CN", "US"))),
        kind=draw(st.sampled_from(KINDS)),
        rights=tuple(draw(st.lists(st.sampled_from(RIGHTS), max_size=2, unique=True))),
        export_control=draw(st.sampled_from((None, "free", "restricted", "prohibited"))),
    )


@st.composite
def demands(draw: st.DrawFn, id: str) -> Document:
    """Demands; their own hard constraints (min TRL, rights, domestic only, foreign) are rarer."""
    budget_min, budget_max = draw(amount), draw(amount)
    if budget_min is not None and budget_max is not None and budget_min > budget_max:
        budget_min, budget_max = budget_max, budget_min
    return Document(
        id=id,
        side="demand",
        text=text_of(draw(words)),
        ipc=tuple(draw(st.lists(st.sampled_from(IPC), max_size=2, unique=True))),
        trl=draw(rarely_trl),
        budget_min=budget_min,
        budget_max=budget_max,
        budget_currency=draw(st.sampled_from(CURRENCIES)),
        region=draw(st.sampled_from(REGIONS)),
        country=draw(st.sampled_from(("CN", "CN", "CN", "JP"))),
        rights=draw(st.sampled_from(((), (), (), ("assignment",), ("exclusive_licence",)))),
        domestic_only=draw(st.sampled_from((False, False, False, True))),
    )


@st.composite
def corpora(draw: st.DrawFn, supplies_max: int = 8) -> list[Document]:
    n_supplies = draw(st.integers(min_value=1, max_value=supplies_max))
    n_demands = draw(st.integers(min_value=1, max_value=4))
    return [draw(supplies(f"supply:{i}")) for i in range(n_supplies)] + [
        draw(demands(f"demand:{i}")) for i in range(n_demands)
    ]


@st.composite
def filters(draw: st.DrawFn) -> Filters:
    """Filters, each kind present about half the time."""
    some = st.booleans()
    regions = frozenset(draw(st.lists(st.sampled_from(REGIONS[1:]), min_size=1)))
    kinds = frozenset(draw(st.lists(st.sampled_from(KINDS[1:]), min_size=1)))
    rights = frozenset(draw(st.lists(st.sampled_from(RIGHTS), min_size=1)))
    on_price = draw(some)
    return Filters(
        regions=regions if draw(some) else None,
        kinds=kinds if draw(some) else None,
        price_min=draw(amount) if on_price else None,
        price_max=draw(amount) if on_price else None,
        currency=draw(st.sampled_from(CURRENCIES)) if on_price else None,
        min_trl=draw(rarely_trl),
        rights=rights if draw(some) else None,
        domestic_only=draw(st.sampled_from((False, False, True))),
    )


def breaks_a_hard_filter(query: Document, doc: Document, f: Filters) -> bool:
    """The hard filters, restated independently of the index's code."""
    supply, demand = (doc, query) if doc.side == "supply" else (query, doc)
    if demand.trl is not None and (supply.trl is None or supply.trl < demand.trl):
        return True
    if demand.rights and not set(demand.rights) & set(supply.rights):
        return True
    if demand.domestic_only and supply.country != "CN":
        return True
    if demand.country != "CN" and supply.export_control not in ("free", "restricted"):
        return True
    if f.regions is not None and doc.region not in f.regions:
        return True
    if f.kinds is not None and doc.kind not in f.kinds:
        return True
    if f.min_trl is not None and (doc.trl is None or doc.trl < f.min_trl):
        return True
    if f.rights is not None and not f.rights & set(doc.rights):
        return True
    if f.domestic_only and doc.country != "CN":
        return True
    if f.price_min is None and f.price_max is None and f.currency is None:
        return False
    currency = f.currency or "CNY"
    if doc.side == "supply":
        price = doc.price_minor
        return (
            price is None
            or (doc.price_currency or "CNY") != currency
            or (f.price_min is not None and price < f.price_min)
            or (f.price_max is not None and price > f.price_max)
        )
    low, high = doc.budget_min, doc.budget_max
    return (
        (low is None and high is None)
        or (doc.budget_currency or "CNY") != currency
        or (f.price_min is not None and high is not None and high < f.price_min)
        or (f.price_max is not None and low is not None and low > f.price_max)
    )


@QUICK
@given(
    corpus=corpora(),
    query=st.one_of(demands("demand:q"), demands("demand:q"), supplies("supply:q")),
    f=st.one_of(st.just(Filters()), filters()),
)
def test_no_result_breaks_a_hard_filter(
    corpus: list[Document], query: Document, f: Filters
) -> None:
    by_id = {d.id: d for d in corpus}
    matches = DockingIndex(corpus).match(query, k=K_MAX, filters=f)
    event(f"results: {min(len(matches), 3)}{'+' if len(matches) >= 3 else ''}")
    for m in matches:
        doc = by_id[m.document_id]
        assert doc.side != query.side
        assert not breaks_a_hard_filter(query, doc, f)
        assert m.ipc_depth > 0 or m.components["text"] > 0  # related to the query at all
    # Everything related and allowed is there (k is larger than the corpus).
    related = {m.document_id for m in brute_force_match(corpus, query, k=K_MAX)}
    allowed = {i for i in related if not breaks_a_hard_filter(query, by_id[i], f)}
    assert {m.document_id for m in matches} == allowed


def _score(index: DockingIndex, query: Document, doc_id: str) -> float | None:
    return next((m.score for m in index.match(query, k=K_MAX) if m.document_id == doc_id), None)


def _improvements(query: Document, target: Document) -> dict[str, st.SearchStrategy[Document]]:
    """Ways to make the target better on exactly one factor, all else equal."""
    ways: dict[str, st.SearchStrategy[Document]] = {}
    query_words = [w for w in query.text.split("。") if w]
    if query_words:  # one more word of the demand, as its own clause
        ways["text"] = st.sampled_from(query_words).map(
            lambda w: replace(target, text=target.text + "。" + w)
        )
    if query.ipc:  # a symbol sharing the deepest prefix
        ways["ipc"] = st.sampled_from(query.ipc).map(
            lambda s: replace(target, ipc=(*target.ipc, s))
        )
    if target.trl is not None and target.trl < 9:  # more mature
        ways["trl"] = st.integers(target.trl + 1, 9).map(lambda t: replace(target, trl=t))
    if target.price_minor:  # cheaper
        ways["budget"] = st.integers(0, target.price_minor - 1).map(
            lambda p: replace(target, price_minor=p)
        )
    if target.region not in DELTA and target.region != query.region:  # into the delta
        ways["region"] = st.sampled_from(DELTA).map(lambda r: replace(target, region=r))
    return ways


@QUICK
@given(data=st.data(), corpus=corpora(), query=demands("demand:q"))
def test_improving_a_supply_on_one_factor_never_lowers_its_score(
    data: st.DataObject, corpus: list[Document], query: Document
) -> None:
    target = data.draw(supplies("supply:target"))
    if query.text and data.draw(st.integers(0, 4)):  # most often related to the query by text
        shared = data.draw(st.sampled_from([w for w in query.text.split("。") if w]))
        target = replace(target, text=text_of([target.text, shared]))
    ways = _improvements(query, target)
    assume(ways)
    factor = data.draw(st.sampled_from(sorted(ways)))
    better = data.draw(ways[factor])
    index = DockingIndex([*corpus, target])
    before = _score(index, query, target.id)
    assume(before is not None)  # the target passes the demand's hard filters and relates to it
    index.upsert(better)
    after = _score(index, query, target.id)
    event(f"improved: {factor}")
    assert after is not None and before is not None
    assert after >= before, (factor, before, after)


@QUICK
@given(
    common=st.sampled_from(VOCABULARY),
    rare=st.sampled_from(VOCABULARY),
    unrelated=st.lists(st.sampled_from(VOCABULARY), max_size=5),
    rare_times=st.integers(min_value=1, max_value=3),
    fillers=st.integers(min_value=1, max_value=10),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_appending_a_common_word_of_the_demand_never_dilutes_a_rare_match(
    common: str, rare: str, unrelated: list[str], rare_times: int, fillers: int, repeats: int
) -> None:
    """The case random corpora seldom reach: the supply matches a rare term of the demand, and
    gains a word of the demand that most other supplies hold. Textbook BM25 would lower its score
    (the longer document dilutes the rare match); ours counts only unmatched text as length."""
    query = Document("demand:q", "demand", text_of([rare, common]))
    query_tokens = set(tokens(query.text))
    assume(tokens(rare) and set(tokens(common)) - set(tokens(rare)))
    unrelated = [w for w in unrelated if not set(tokens(w)) & query_tokens]
    others = [Document(f"supply:{i}", "supply", common) for i in range(fillers)]
    target = Document("supply:t", "supply", text_of([*unrelated, *[rare] * rare_times]))
    index = DockingIndex([*others, target])
    before = _score(index, query, target.id)
    assert before is not None
    for _ in range(repeats):
        target = replace(target, text=target.text + "。" + common)
        index.upsert(target)
        after = _score(index, query, target.id)
        assert after is not None and after >= before, (before, after)
        before = after


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, Document | str]]:
    ops: list[tuple[str, Document | str]] = []
    for step in range(draw(st.integers(min_value=1, max_value=12))):
        doc_id = f"supply:{draw(st.integers(min_value=0, max_value=5))}"
        if draw(st.integers(min_value=0, max_value=3)) == 0:
            ops.append(("remove", doc_id))
        elif draw(st.booleans()):
            ops.append(("upsert", draw(supplies(doc_id))))
        else:
            ops.append(("upsert", draw(demands(f"demand:{step % 3}"))))
    return ops


@QUICK
@given(
    corpus=corpora(),
    ops=operations(),
    query=st.one_of(demands("demand:q"), demands("demand:q"), supplies("supply:q")),
    f=st.one_of(st.just(Filters()), filters()),
    k=st.integers(min_value=1, max_value=12),
)
def test_the_index_agrees_with_brute_force_through_upserts_and_removals(
    corpus: list[Document],
    ops: list[tuple[str, Document | str]],
    query: Document,
    f: Filters,
    k: int,
) -> None:
    index = DockingIndex(corpus)
    model = {d.id: d for d in corpus}
    assert index.match(query, k=k, filters=f) == brute_force_match(corpus, query, k=k, filters=f)
    for op, arg in ops:
        if op == "remove":
            assert isinstance(arg, str)
            index.remove(arg)
            model.pop(arg, None)
        else:
            assert isinstance(arg, Document)
            index.upsert(arg)
            model[arg.id] = arg
    assert len(index) == len(model) and all(index.get(i) == d for i, d in model.items())
    expected = brute_force_match(model.values(), query, k=k, filters=f)
    event(f"results: {min(len(expected), 3)}{'+' if len(expected) >= 3 else ''}")
    assert index.match(query, k=k, filters=f) == expected


@QUICK
@given(
    corpus=corpora(supplies_max=30),
    copies=st.integers(min_value=0, max_value=3),
    query=st.one_of(demands("demand:q"), supplies("supply:q")),
    k=st.integers(min_value=1, max_value=5),
)
def test_the_index_agrees_with_brute_force_on_the_cut_between_ties(
    corpus: list[Document], copies: int, query: Document, k: int
) -> None:
    """Many results for a small k, and identical documents under other ids: ties at the cut are
    broken by id in both."""
    twins = [replace(d, id=f"{d.id}:twin{n}") for d in corpus[:3] for n in range(copies)]
    corpus = [*corpus, *twins]
    expected = brute_force_match(corpus, query, k=k)
    event(f"results: {len(expected)} of k={k}")
    assert DockingIndex(corpus).match(query, k=k) == expected
