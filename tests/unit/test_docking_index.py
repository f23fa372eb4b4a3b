"""The docking index on a small bilingual corpus written for these tests: cross-language recall,
IPC ordering, every hard filter, freshness without a rebuild, explanations, and agreement with
brute force."""

# ruff: noqa: RUF001 - Chinese text has full-width commas

from __future__ import annotations

import pytest

from exchange.docking import (
    WEIGHTS,
    DockingIndex,
    Document,
    Filters,
    Match,
    brute_force_match,
    rules,
    tokens,
)

YUAN = 100  # minor units


def supply(id: str, text: str, **fields: object) -> Document:
    defaults: dict[str, object] = {
        "trl": 6,
        "price_minor": 1_000_000 * YUAN,
        "price_currency": "CNY",
        "region": "CN-SH",
        "kind": "invention_patent",
        "rights": ("assignment", "exclusive_licence"),
        "export_control": "free",
    }
    return Document(f"supply:{id}", "supply", text, **{**defaults, **fields})  # type: ignore[arg-type]


def demand(text: str, **fields: object) -> Document:
    return Document("demand:q", "demand", text, **fields)  # type: ignore[arg-type]


CORPUS = (
    supply(
        "zh_battery",
        "硫化物固态电解质及全固态电池。本发明公开了一种用于全固态锂电池的硫化物固态电解质，"
        "离子电导率高，与锂金属负极界面稳定。",
        ipc=("H01M 10/0562",),
        trl=5,
        price_minor=5_000_000 * YUAN,
    ),
    supply(
        "en_battery",
        "Sulfide solid electrolyte for solid-state batteries. A solid-state battery whose sulfide "
        "solid electrolyte has high ionic conductivity and a stable interface with lithium metal.",
        ipc=("H01M 10/052",),
        trl=6,
        price_minor=800_000 * YUAN,
        region=None,
        country="US",
        rights=("non_exclusive_licence",),
        export_control=None,
    ),
    supply(
        "zh_sodium",
        "钠离子电池层状氧化物正极材料及其制备方法，提高循环寿命。",
        ipc=("H01M 4/505",),
        trl=4,
        price_minor=2_000_000 * YUAN,
        region="CN-JS",
        kind="know_how",
    ),
    supply(
        "zh_ai",
        "基于卷积神经网络的医学影像病灶识别方法，利用深度学习提高诊断准确率。",
        ipc=("G06N 3/08", "G06T 7/00"),
        trl=7,
        region="CN-BJ",
        kind="software",
        price_minor=300_000 * YUAN,
    ),
    supply(
        "en_ai",
        "Neural network accelerator chip for low-power edge inference of deep learning models.",
        ipc=("G06N 3/063",),
        trl=4,
        region="CN-JS",
        price_minor=3_000_000 * YUAN,
    ),
    supply(
        "zh_vaccine",
        "核酸疫苗的脂质纳米颗粒递送系统，提高mRNA疫苗的稳定性和免疫原性。",
        ipc=("A61K 9/51", "A61K 39/12"),
        trl=4,
        region="CN-ZJ",
        export_control="restricted",
    ),
    supply(
        "en_vaccine",
        "Lipid nanoparticle delivery of mRNA vaccines with improved stability.",
        ipc=("A61K 9/127",),
        trl=3,
        region=None,
        country="DE",
        export_control=None,
        price_currency="EUR",
    ),
    supply(
        "en_antibody",
        "Monoclonal antibody against PD-1 for tumour immunotherapy.",
        ipc=("C07K 16/28", "A61P 35/00"),
        trl=6,
        region="CN-GD",
        export_control="prohibited",
    ),
    supply(
        "zh_graphene",
        "石墨烯导热复合材料及其制备方法，用于电子器件散热。",
        ipc=("C01B 32/182", "C08K 3/04"),
        trl=8,
        region="CN-AH",
        kind="know_how",
        price_minor=200_000 * YUAN,
        rights=("non_exclusive_licence",),
    ),
    supply(
        "en_catalyst",
        "Platinum-free catalyst for water electrolysis and hydrogen production.",
        ipc=("C25B 11/04", "B01J 23/755"),
        trl=5,
        region="CN-AH",
    ),
    supply(
        "zh_robot",
        "工业机器人视觉引导抓取系统，机械臂根据图像识别结果规划路径。",
        ipc=("B25J 9/16",),
        trl=7,
        region="CN-GD",
        kind="software",
    ),
    supply(
        "en_sensor",
        "Flexible pressure sensor for robotic skin with graphene electrodes.",
        ipc=("G01L 1/14", "B25J 13/08"),
        trl=3,
        region="CN-ZJ",
        price_minor=None,
    ),
)

# Touches every subject of the corpus, so that a filter has something to remove.
BROAD = "电池 神经网络 疫苗 抗体 石墨烯 催化剂 机器人 传感器 电解质 深度学习 纳米颗粒"


@pytest.fixture
def index() -> DockingIndex:
    return DockingIndex(CORPUS)


def ids(matches: list[Match]) -> list[str]:
    return [m.document_id for m in matches]


def by_id(doc_id: str) -> Document:
    return next(d for d in CORPUS if d.id == doc_id)


def test_tokens_segment_chinese_stem_english_and_share_concepts() -> None:
    zh = tokens("固态电池的电解质")
    en = tokens("All-solid-state batteries and their electrolytes")
    assert {"固态电池", "电解质"} <= set(zh)
    assert "的" not in zh and "and" not in en and "their" not in en
    assert {"batteri", "electrolyt"} <= set(en)
    assert {"@solid_state_battery", "@battery", "@electrolyte"} <= set(zh) & set(en)
    # A maximal match only: 电解质 (electrolyte) is not also 电解 (electrolysis).
    assert "@electrolysis" not in zh
    assert tokens("5G 通信") == tokens("5G 通信") and "5g" in tokens("5G 通信")


def test_a_chinese_demand_finds_the_chinese_and_the_english_supply_on_its_subject(
    index: DockingIndex,
) -> None:
    found = ids(index.match(demand("寻求固态电池的硫化物电解质技术"), k=3))
    assert found[:2] == ["supply:zh_battery", "supply:en_battery"]

    found = ids(index.match(demand("需要mRNA疫苗的递送技术"), k=3))
    assert {"supply:zh_vaccine", "supply:en_vaccine"} <= set(found[:2])

    found = ids(index.match(demand("神经网络芯片"), k=3))
    assert {"supply:zh_ai", "supply:en_ai"} <= set(found[:2])


def test_an_english_demand_finds_the_chinese_supply(index: DockingIndex) -> None:
    found = ids(index.match(demand("graphene composite for heat dissipation"), k=2))
    assert found[0] == "supply:zh_graphene"


def test_ipc_overlap_is_the_depth_of_the_shared_prefix() -> None:
    assert rules.ipc_prefixes("G06N 3/08") == ("G", "G06", "G06N", "G06N 3")
    assert rules.ipc_prefixes("g06n3/08") == rules.ipc_prefixes("G06N  3/08")
    assert rules.ipc_overlap(["G06N 3/04"], ["G06N 3/08"]) == (1.0, 4)
    assert rules.ipc_overlap(["G06N 3/04"], ["G06N 5/02"]) == (0.75, 3)
    assert rules.ipc_overlap(["G06N 3/04"], ["G06F 16/00"]) == (0.5, 2)
    assert rules.ipc_overlap(["G06N 3/04"], ["G01N 21/00"]) == (0.25, 1)
    assert rules.ipc_overlap(["G06N 3/04"], ["H01M 10/00"]) == (0.0, 0)
    assert rules.ipc_overlap(["H01M 10/00", "G06N 3/04"], ["G06N 5/02"]) == (0.75, 3)
    assert rules.ipc_overlap(["not ipc"], ["G06N 5/02"]) == (0.0, 0)


def test_ipc_overlap_orders_results_group_subclass_class_section() -> None:
    symbols = {
        "section": "G01N 21/00",
        "class": "G06F 16/00",
        "subclass": "G06N 5/02",
        "group": "G06N 3/08",
        "none": "H01M 10/00",
    }
    index = DockingIndex(supply(name, "", ipc=(symbol,)) for name, symbol in symbols.items())
    matches = index.match(demand("", ipc=("G06N 3/04",)))
    assert ids(matches) == [
        "supply:group",
        "supply:subclass",
        "supply:class",
        "supply:section",
    ]
    assert [m.ipc_depth for m in matches] == [4, 3, 2, 1]
    assert [m.components["ipc"] for m in matches] == [1.0, 0.75, 0.5, 0.25]


def _filtered(
    index: DockingIndex, query: Document, filters: Filters = Filters()
) -> tuple[list[Document], list[Document]]:
    """Results with and without the filters (without them, the query's own constraints too)."""
    unconstrained = Document(query.id, query.side, query.text, ipc=query.ipc)
    every = [by_id(m.document_id) for m in index.match(unconstrained, k=50)]
    kept = [by_id(m.document_id) for m in index.match(query, k=50, filters=filters)]
    assert kept, "the filter left nothing: the test proves nothing"
    assert len(kept) < len(every), "the filter removed nothing: the test proves nothing"
    return every, kept


def test_the_region_filter_holds(index: DockingIndex) -> None:
    _, kept = _filtered(index, demand(BROAD), Filters(regions=frozenset({"CN-SH", "CN-JS"})))
    assert {d.region for d in kept} <= {"CN-SH", "CN-JS"}


def test_the_kind_filter_holds(index: DockingIndex) -> None:
    _, kept = _filtered(index, demand(BROAD), Filters(kinds=frozenset({"know_how", "software"})))
    assert {d.kind for d in kept} <= {"know_how", "software"}


def test_the_price_range_filter_holds(index: DockingIndex) -> None:
    low, high = 250_000 * YUAN, 2_000_000 * YUAN
    _, kept = _filtered(index, demand(BROAD), Filters(price_min=low, price_max=high))
    for d in kept:
        assert d.price_minor is not None and low <= d.price_minor <= high
        assert d.price_currency == "CNY"
    _, kept = _filtered(index, demand(BROAD), Filters(currency="EUR"))
    assert [d.id for d in kept] == ["supply:en_vaccine"]


def test_the_trl_filters_hold(index: DockingIndex) -> None:
    _, kept = _filtered(index, demand(BROAD, trl=6))
    assert all(d.trl is not None and d.trl >= 6 for d in kept)
    _, kept = _filtered(index, demand(BROAD), Filters(min_trl=7))
    assert all(d.trl is not None and d.trl >= 7 for d in kept)


def test_the_rights_filters_hold(index: DockingIndex) -> None:
    _, kept = _filtered(index, demand(BROAD, rights=("non_exclusive_licence",)))
    assert {d.id for d in kept} == {"supply:en_battery", "supply:zh_graphene"}
    _, kept = _filtered(index, demand(BROAD), Filters(rights=frozenset({"exclusive_licence"})))
    assert all("exclusive_licence" in d.rights for d in kept)


def test_the_domestic_only_filters_hold(index: DockingIndex) -> None:
    every, kept = _filtered(index, demand(BROAD, domestic_only=True))
    assert all(d.country == "CN" for d in kept)
    assert {d.id for d in every} - {d.id for d in kept} == {
        "supply:en_battery",
        "supply:en_vaccine",
    }
    _, kept = _filtered(index, demand(BROAD), Filters(domestic_only=True))
    assert all(d.country == "CN" for d in kept)


def test_a_foreign_demander_sees_only_supplies_free_or_restricted_for_export(
    index: DockingIndex,
) -> None:
    every, kept = _filtered(index, demand(BROAD, country="US", region=None))
    assert {d.export_control for d in kept} <= {"free", "restricted"}
    assert {d.id for d in every} - {d.id for d in kept} == {
        "supply:en_battery",  # unrecorded
        "supply:en_vaccine",  # unrecorded
        "supply:en_antibody",  # prohibited
    }
    assert rules.export_eligible("prohibited", "CN") and rules.export_eligible(None, "cn")
    assert not rules.export_eligible(None, "US") and rules.export_eligible("restricted", "US")


def test_a_supply_finds_only_the_demands_it_can_serve() -> None:
    demands = [
        Document("demand:ok", "demand", "固态电池电解质"),
        Document("demand:trl", "demand", "固态电池电解质", trl=8),
        Document("demand:rights", "demand", "固态电池电解质", rights=("assignment",)),
        Document("demand:domestic", "demand", "固态电池电解质", domestic_only=True),
        Document("demand:foreign", "demand", "solid-state battery electrolyte", country="JP"),
        Document("demand:other", "demand", "疫苗"),
    ]
    index = DockingIndex([*CORPUS, *demands])
    en_battery = by_id("supply:en_battery")  # TRL 6, non-exclusive licence, US, unrecorded
    assert ids(index.match(en_battery)) == ["demand:ok"]
    zh_battery = by_id("supply:zh_battery")  # TRL 5, assignment, CN, free for export
    assert set(ids(index.match(zh_battery))) == {
        "demand:ok",
        "demand:rights",
        "demand:domestic",
        "demand:foreign",
    }


def test_a_new_supply_is_found_without_a_rebuild_and_a_withdrawn_one_is_not(
    index: DockingIndex,
) -> None:
    query = demand("钙钛矿太阳能电池")
    assert "supply:perovskite" not in ids(index.match(query))
    fresh = supply("perovskite", "Perovskite solar cells with long-term stability")
    index.upsert(fresh)
    assert "supply:perovskite" in index and len(index) == len(CORPUS) + 1
    assert index.get("supply:perovskite") == fresh
    assert ids(index.match(query))[0] == "supply:perovskite"

    index.remove("supply:perovskite")
    assert "supply:perovskite" not in index and len(index) == len(CORPUS)
    assert index.get("supply:perovskite") is None
    assert "supply:perovskite" not in ids(index.match(query))
    index.remove("supply:perovskite")  # a replayed event changes nothing
    assert ids(index.match(query)) == ids(DockingIndex(CORPUS).match(query))


def test_an_upserted_change_replaces_the_old_document(index: DockingIndex) -> None:
    old_subject, new_subject = demand("石墨烯导热"), demand("水下机器人")
    assert ids(index.match(old_subject))[0] == "supply:zh_graphene"
    changed = supply("zh_graphene", "水下机器人的声呐导航系统", ipc=("B63C 11/00",), trl=8)
    index.upsert(changed)
    assert len(index) == len(CORPUS)
    assert "supply:zh_graphene" not in ids(index.match(old_subject))
    assert ids(index.match(new_subject))[0] == "supply:zh_graphene"
    corpus = [changed if d.id == changed.id else d for d in CORPUS]
    for query in (old_subject, new_subject, demand(BROAD)):
        assert index.match(query) == brute_force_match(corpus, query)


def test_a_match_explains_its_score(index: DockingIndex) -> None:
    query = demand(
        "寻求固态电池电解质技术",
        ipc=("H01M 10/05",),
        trl=5,
        budget_max=4_000_000 * YUAN,
        region="CN-JS",
    )
    best, english = index.match(query, k=2)
    assert best.document_id == "supply:zh_battery"
    assert set(best.components) == set(WEIGHTS) == {"text", "ipc", "trl", "budget", "region"}
    assert all(0.0 <= value <= 1.0 for value in best.components.values())
    total = sum(WEIGHTS[name] * value for name, value in best.components.items())
    assert best.score == pytest.approx(total, abs=1e-5)
    assert best.ipc_depth == 4 and best.components["ipc"] == 1.0
    assert best.components["trl"] == 1.0
    assert best.components["budget"] == pytest.approx((4 / 5) ** 2, abs=1e-6)  # over budget
    assert best.components["region"] == 0.8  # both in the Yangtze River Delta
    assert {"固态", "电池", "电解质", "@solid_state_battery"} <= set(best.matched_terms)
    # The English supply matched through the glossary's concepts only.
    assert english.document_id == "supply:en_battery"
    assert set(english.matched_terms) <= {m for m in english.matched_terms if m.startswith("@")}
    assert "@solid_state_battery" in english.matched_terms
    assert english.components["budget"] == 1.0
    assert english.components["region"] == 0.5  # only the demander is in the delta


def test_the_index_agrees_with_brute_force(index: DockingIndex) -> None:
    queries = [
        demand(BROAD),
        demand(BROAD, trl=5, rights=("assignment",)),
        demand(BROAD, country="US", budget_max=1_000_000 * YUAN, region="CN-ZJ"),
        demand("固态电池电解质", ipc=("H01M 10/05",)),
        demand("", ipc=("G06N 3/04", "A61K 9/00")),
        demand("Neural networks for medical imaging", trl=4, region="CN-BJ"),
        by_id("supply:zh_battery"),
    ]
    filters = [
        Filters(),
        Filters(regions=frozenset({"CN-SH", "CN-ZJ"})),
        Filters(price_max=1_000_000 * YUAN, min_trl=4),
    ]
    for query in queries:
        for f in filters:
            for k in (1, 3, 10):
                assert index.match(query, k=k, filters=f) == brute_force_match(
                    CORPUS, query, k=k, filters=f
                )


def test_results_are_sorted_and_rounded(index: DockingIndex) -> None:
    matches = index.match(demand(BROAD), k=50)
    assert len(matches) == len(CORPUS)
    keys = [(-m.score, m.document_id) for m in matches]
    assert keys == sorted(keys)
    assert all(round(m.score, 6) == m.score for m in matches)


def test_bad_input_is_refused(index: DockingIndex) -> None:
    with pytest.raises(ValueError, match="TRL"):
        Document("supply:x", "supply", "", trl=10)
    with pytest.raises(ValueError, match="side"):
        Document("supply:x", "offer", "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must"):
        index.match(demand("电池"), k=0)
