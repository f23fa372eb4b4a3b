"""Docking index: build time, memory and top-10 latency, beside brute force measured in one run.

    .venv/bin/python bench/docking.py [--quick] [--supplies N] [--demands N] [--brute-force N]
                                      [--seed S]

Generates synthetic supplies (about half Chinese, a third English, the rest Chinese titles with
English abstracts; technical vocabulary per field; IPC symbols drawn from a realistic spread with
sections G, H, A, C and B the heaviest) and demands, builds the index, then prints:
  build      DockingIndex(supplies): tokenising (jieba, stemming, glossary) and postings
  memory     resident set size after the build (VmRSS), and what the build added
  freshness  single-document upsert and remove latency on the built index, and where a freshly
             upserted supply ranks for a demand describing it (first unless a near-twin supply
             is better on a fit factor, e.g. a known TRL against its unknown one)
  query      top-10 latency p50/p95/p99 over the demands (no filters, and with a filter mix)
  baseline   brute_force_match over every supply on a sample of demands (its one-off analysis of
             the corpus is timed apart), the speed-up, and whether index and brute force agree
Targets: query p95 <= 20 ms, build <= 60 s, <= 1 GiB resident. Misses are reported, never
raised: it exits 0. Seeded, so runs compare.
"""

# ruff: noqa: SIM905, RUF001 - vocabularies read best as text; Chinese text has full-width commas

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from exchange.docking import DockingIndex, Document, Filters, brute_force_match

QUERY_P95_MS_TARGET = 20.0
BUILD_S_TARGET = 60.0
RSS_MIB_TARGET = 1024.0


@dataclass(frozen=True)
class Field:
    name: str
    weight: float
    ipc: tuple[tuple[str, float], ...]  # main groups with weights; subdivisions are drawn
    zh: tuple[str, ...]
    en: tuple[str, ...]


FIELDS = (
    Field(
        "batteries",
        10,
        (("H01M 4/", 4), ("H01M 10/", 5), ("H01M 50/", 1), ("H02J 7/", 2), ("B60L 58/", 1)),
        tuple(
            "固态电池 锂离子电池 电解质 固态电解质 正极材料 负极材料 隔膜 电极 钠离子电池 储能 "
            "能量密度 循环寿命 热管理 电池管理系统 充电 快充 硅碳负极 磷酸铁锂 三元材料 电芯 "
            "安全性 热失控 导电剂 粘结剂 集流体".split()
        ),
        tuple(
            "solid-state battery, lithium-ion battery, electrolyte, solid electrolyte, cathode "
            "material, anode material, separator, electrode, sodium-ion battery, energy storage, "
            "energy density, cycle life, thermal management, battery management system, fast "
            "charging, silicon anode, lithium iron phosphate, thermal runaway, binder, current "
            "collector, cell safety".split(", ")
        ),
    ),
    Field(
        "ai",
        12,
        (
            ("G06N 3/", 6),
            ("G06N 20/", 2),
            ("G06V 10/", 3),
            ("G06F 16/", 2),
            ("G06F 40/", 2),
            ("G06T 7/", 2),
            ("G10L 15/", 1),
        ),
        tuple(
            "人工智能 深度学习 神经网络 卷积神经网络 机器学习 图像识别 目标检测 自然语言处理 "
            "大模型 知识图谱 语音识别 强化学习 联邦学习 推荐系统 数据挖掘 特征提取 模型训练 "
            "注意力机制 图像分割 边缘计算".split()
        ),
        tuple(
            "artificial intelligence, deep learning, neural network, convolutional neural "
            "network, machine learning, image recognition, object detection, natural language "
            "processing, large language model, knowledge graph, speech recognition, "
            "reinforcement learning, federated learning, recommender system, data mining, feature "
            "extraction, model training, attention mechanism, image segmentation, edge "
            "computing".split(", ")
        ),
    ),
    Field(
        "biomedicine",
        10,
        (
            ("A61K 39/", 3),
            ("A61K 9/", 2),
            ("A61P 35/", 2),
            ("C12N 15/", 3),
            ("C07K 16/", 2),
            ("C12Q 1/", 2),
            ("A61K 31/", 2),
        ),
        tuple(
            "疫苗 抗体 单克隆抗体 抗原 蛋白质 基因编辑 基因治疗 细胞治疗 干细胞 肿瘤 免疫治疗 "
            "药物递送 脂质纳米颗粒 小分子 多肽 体外诊断 生物标志物 测序 核酸疫苗 临床试验".split()
        ),
        tuple(
            "vaccine, antibody, monoclonal antibody, antigen, protein, gene editing, gene "
            "therapy, cell therapy, stem cell, tumor, immunotherapy, drug delivery, lipid "
            "nanoparticle, small molecule, peptide, in vitro diagnostic, biomarker, sequencing, "
            "mrna vaccine, clinical trial".split(", ")
        ),
    ),
    Field(
        "medical_devices",
        6,
        (("A61B 5/", 4), ("A61B 6/", 2), ("A61B 34/", 2), ("A61F 2/", 2), ("G16H 50/", 2)),
        tuple(
            "医疗器械 医学影像 磁共振 内窥镜 手术机器人 植入物 可穿戴 健康监测 心率 血糖 康复 "
            "超声 生物传感器 微流控 诊断".split()
        ),
        tuple(
            "medical device, medical imaging, magnetic resonance, endoscope, surgical robot, "
            "implant, wearable, health monitoring, heart rate, blood glucose, rehabilitation, "
            "ultrasound, biosensor, microfluidic chip, diagnosis".split(", ")
        ),
    ),
    Field(
        "materials",
        10,
        (
            ("C08L 63/", 2),
            ("C08K 3/", 2),
            ("C01B 32/", 3),
            ("C04B 35/", 2),
            ("C22C 14/", 1),
            ("B22F 10/", 2),
            ("C09D 5/", 2),
            ("B82Y 30/", 1),
        ),
        tuple(
            "石墨烯 碳纳米管 复合材料 碳纤维 高分子 陶瓷 合金 钛合金 高熵合金 涂层 薄膜 气凝胶 "
            "水凝胶 可降解 防腐 粉末冶金 纳米材料 稀土 永磁 增材制造".split()
        ),
        tuple(
            "graphene, carbon nanotube, composite material, carbon fiber, polymer, ceramic, "
            "alloy, titanium alloy, high-entropy alloy, coating, thin film, aerogel, hydrogel, "
            "biodegradable, anticorrosion, powder metallurgy, nanomaterial, rare earth, permanent "
            "magnet, additive manufacturing".split(", ")
        ),
    ),
    Field(
        "chemistry",
        7,
        (
            ("B01J 23/", 3),
            ("B01J 37/", 1),
            ("C07C 29/", 1),
            ("C25B 1/", 2),
            ("B01D 53/", 2),
            ("C02F 1/", 2),
        ),
        tuple(
            "催化剂 光催化 电催化 电解水 制氢 吸附 分子筛 金属有机框架 废水 水处理 脱硫 脱硝 "
            "碳捕集 溶剂 合成 氧化物".split()
        ),
        tuple(
            "catalyst, photocatalysis, electrocatalysis, water electrolysis, hydrogen "
            "production, adsorption, molecular sieve, metal-organic framework, wastewater, water "
            "treatment, desulfurization, denitrification, carbon capture, solvent, synthesis, "
            "oxide".split(", ")
        ),
    ),
    Field(
        "semiconductors",
        9,
        (
            ("H01L 21/", 4),
            ("H01L 29/", 2),
            ("H01L 23/", 2),
            ("H10K 50/", 1),
            ("G03F 7/", 1),
            ("H01L 33/", 1),
        ),
        tuple(
            "半导体 芯片 集成电路 晶圆 光刻 光刻胶 刻蚀 封装 晶体管 碳化硅 氮化镓 功率器件 "
            "发光二极管 有机发光二极管 存储器 传感器 图像传感器".split()
        ),
        tuple(
            "semiconductor, chip, integrated circuit, wafer, lithography, photoresist, etching, "
            "packaging, transistor, silicon carbide, gallium nitride, power device, "
            "light-emitting diode, oled, memory, sensor, image sensor".split(", ")
        ),
    ),
    Field(
        "communications",
        8,
        (
            ("H04L 9/", 2),
            ("H04L 67/", 2),
            ("H04W 72/", 3),
            ("H04B 10/", 2),
            ("H01Q 1/", 1),
            ("H04N 19/", 1),
        ),
        tuple(
            "通信 无线通信 光通信 光纤 天线 射频 信号处理 物联网 区块链 加密 网络安全 云计算 "
            "视频 编码 压缩 量子通信 卫星".split()
        ),
        tuple(
            "communication, wireless communication, optical communication, optical fiber, "
            "antenna, radio frequency, signal processing, internet of things, blockchain, "
            "encryption, network security, cloud computing, video, encoding, compression, "
            "quantum communication, satellite".split(", ")
        ),
    ),
    Field(
        "vehicles_robots",
        8,
        (
            ("B60W 30/", 2),
            ("B60W 60/", 1),
            ("G01S 17/", 2),
            ("B25J 9/", 4),
            ("G05D 1/", 2),
            ("B64C 39/", 1),
        ),
        tuple(
            "自动驾驶 激光雷达 电动汽车 电机 机器人 工业机器人 机械臂 人形机器人 路径规划 导航 "
            "定位 无人机 控制系统 减速器 外骨骼".split()
        ),
        tuple(
            "autonomous driving, lidar, electric vehicle, motor, robot, industrial robot, robotic "
            "arm, humanoid robot, path planning, navigation, positioning, drone, control system, "
            "reducer, exoskeleton".split(", ")
        ),
    ),
    Field(
        "energy",
        7,
        (
            ("H02S 40/", 2),
            ("H01L 31/", 2),
            ("F03D 7/", 1),
            ("H02J 3/", 3),
            ("F24S 10/", 1),
            ("H02M 7/", 2),
        ),
        tuple(
            "光伏 太阳能电池 钙钛矿 风电 电网 智能电网 逆变器 储能 热泵 节能 余热 氢气 燃料电池 "
            "电力电子 变压器".split()
        ),
        tuple(
            "photovoltaic, solar cell, perovskite, wind power, power grid, smart grid, inverter, "
            "energy storage, heat pump, energy saving, waste heat, hydrogen, fuel cell, power "
            "electronics, transformer".split(", ")
        ),
    ),
    Field(
        "manufacturing",
        8,
        (
            ("B23K 26/", 2),
            ("B23Q 17/", 1),
            ("B29C 45/", 2),
            ("F16H 1/", 1),
            ("G05B 19/", 3),
            ("G01N 21/", 2),
            ("B33Y 10/", 1),
        ),
        tuple(
            "智能制造 工业互联网 数控 机床 激光 焊接 注塑 模具 轴承 齿轮 液压 自动化 生产线 "
            "无损检测 检测 测量 校准 振动 故障诊断 预测性维护 数字孪生".split()
        ),
        tuple(
            "smart manufacturing, industrial internet, cnc, machine tool, laser, welding, "
            "injection molding, mold, bearing, gear, hydraulic, automation, production line, "
            "nondestructive testing, inspection, measurement, calibration, vibration, fault "
            "diagnosis, predictive maintenance, digital twin".split(", ")
        ),
    ),
    Field(
        "agri_food",
        5,
        (("A01G 9/", 2), ("A01N 43/", 1), ("A23L 3/", 2), ("A01H 6/", 1), ("C05G 3/", 1)),
        tuple(
            "农业 智慧农业 作物 水稻 小麦 育种 种子 肥料 农药 灌溉 温室 水产养殖 食品 食品安全 "
            "保鲜 发酵 益生菌 茶叶".split()
        ),
        tuple(
            "agriculture, smart agriculture, crop, rice, wheat, breeding, seed, fertilizer, "
            "pesticide, irrigation, greenhouse, aquaculture, food, food safety, preservation, "
            "fermentation, probiotic, tea".split(", ")
        ),
    ),
)

ZH_GENERIC = tuple(
    "方法 装置 系统 结构 工艺 组件 模块 设备 性能 效率 成本 稳定性 可靠性 精度 寿命 应用 "
    "制备 优化 控制 检测 监测 处理 改性 高效 低成本 高性能 新型 智能 集成 在线 快速".split()
)
EN_GENERIC = tuple(
    "method system device apparatus structure process module assembly performance efficiency "
    "cost stability reliability accuracy lifetime application preparation optimization control "
    "monitoring treatment modified efficient low-cost high-performance novel intelligent "
    "integrated online rapid".split()
)
REGIONS = (
    ("CN-SH", 14),
    ("CN-JS", 14),
    ("CN-ZJ", 12),
    ("CN-AH", 6),
    ("CN-BJ", 12),
    ("CN-GD", 12),
    ("CN-SD", 5),
    ("CN-HB", 4),
    ("CN-SC", 4),
    ("CN-SN", 3),
    ("CN-FJ", 3),
    ("CN-TJ", 3),
    ("CN-HN", 2),
    ("CN-LN", 2),
    (None, 4),
)
KINDS = (
    ("invention_patent", 55),
    ("utility_model", 15),
    ("know_how", 10),
    ("software", 10),
    ("design", 5),
    ("plant_variety", 5),
)
RIGHTS = ("assignment", "exclusive_licence", "sole_licence", "non_exclusive_licence")
EXPORT = (("free", 60), ("restricted", 15), ("prohibited", 5), (None, 20))
FOREIGN = ("US", "DE", "JP", "KR", "GB", "SG")


def pick(rng: random.Random, weighted: Sequence[tuple[object, float]]) -> object:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def region(rng: random.Random) -> str | None:
    value = pick(rng, REGIONS)
    return None if value is None else str(value)


def ipc_symbols(rng: random.Random, field: Field) -> tuple[str, ...]:
    count = rng.choices((1, 2, 3, 4), (45, 30, 15, 10))[0]
    out = []
    for _ in range(count):
        if rng.random() < 0.15:  # a secondary classification from another field
            field = rng.choices(FIELDS, [f.weight for f in FIELDS])[0]
        group = str(pick(rng, field.ipc))
        out.append(f"{group}{rng.choice((0, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20))}")
    return tuple(dict.fromkeys(out))


def zh_text(rng: random.Random, field: Field) -> str:
    terms = rng.sample(field.zh, 5)
    generic = rng.sample(ZH_GENERIC, 6)
    title = f"一种{terms[0]}{generic[0]}及其{generic[1]}{generic[2]}"
    body = (
        f"本发明公开了一种{terms[0]}{generic[0]}，包括{terms[1]}和{terms[2]}{generic[3]}，"
        f"所述{terms[1]}通过{terms[3]}实现{generic[4]}，"
        f"提高了{terms[4]}的{rng.choice(('稳定性', '效率', '精度', '寿命'))}，"
        f"降低了{generic[5]}成本，适用于{rng.choice(field.zh)}领域。"
    )
    return title + "。" + body


def en_text(rng: random.Random, field: Field) -> str:
    terms = rng.sample(field.en, 5)
    generic = rng.sample(EN_GENERIC, 6)
    title = f"{generic[0].capitalize()} for {terms[0]} {generic[1]} based on {terms[1]}"
    body = (
        f"The invention discloses a {terms[0]} {generic[0]} comprising a {terms[1]} and a "
        f"{terms[2]} {generic[2]}. The {terms[1]} uses {terms[3]} to achieve {generic[3]} "
        f"{generic[4]}, which improves the {rng.choice(('stability', 'efficiency', 'accuracy'))} "
        f"of the {terms[4]} and reduces {generic[5]} cost in {rng.choice(field.en)} "
        f"applications."
    )
    return title + ". " + body


def supply(rng: random.Random, i: int) -> Document:
    field = rng.choices(FIELDS, [f.weight for f in FIELDS])[0]
    language = rng.random()
    if language < 0.55:
        text, keywords = zh_text(rng, field), tuple(rng.sample(field.zh, 3))
    elif language < 0.9:
        text, keywords = en_text(rng, field), tuple(rng.sample(field.en, 3))
    else:
        text = zh_text(rng, field).split("。")[0] + "。" + en_text(rng, field)
        keywords = (rng.choice(field.zh), rng.choice(field.en))
    foreign = rng.random() < 0.08
    return Document(
        id=f"supply:{i:06d}",
        side="supply",
        text=text,
        keywords=keywords,
        ipc=ipc_symbols(rng, field),
        trl=None if rng.random() < 0.1 else rng.randint(1, 9),
        price_minor=None if rng.random() < 0.2 else int(rng.lognormvariate(13.5, 1.2)) * 100,
        price_currency="USD" if rng.random() < 0.05 else "CNY",
        region=None if foreign else region(rng),
        country=rng.choice(FOREIGN) if foreign else "CN",
        kind=str(pick(rng, KINDS)),
        rights=tuple(rng.sample(RIGHTS, rng.randint(1, 3))),
        export_control=pick(rng, EXPORT),  # type: ignore[arg-type]
    )


def demand(rng: random.Random, i: int) -> Document:
    field = rng.choices(FIELDS, [f.weight for f in FIELDS])[0]
    if rng.random() < 0.7:
        terms = rng.sample(field.zh, 3)
        text = (
            f"寻求{terms[0]}相关技术，解决{terms[1]}{rng.choice(ZH_GENERIC)}问题，"
            f"希望提高{terms[2]}的{rng.choice(('稳定性', '效率', '精度'))}"
        )
    else:
        terms = rng.sample(field.en, 3)
        text = (
            f"Looking for {terms[0]} technology to solve {terms[1]} {rng.choice(EN_GENERIC)} "
            f"problems and improve {terms[2]}"
        )
    budget_max = None if rng.random() < 0.3 else int(rng.lognormvariate(13.8, 1.0)) * 100
    foreign = rng.random() < 0.1
    return Document(
        id=f"demand:{i:05d}",
        side="demand",
        text=text,
        ipc=ipc_symbols(rng, field)[:1] if rng.random() < 0.6 else (),
        trl=None if rng.random() < 0.5 else rng.randint(3, 7),
        budget_max=budget_max,
        budget_min=None if budget_max is None else budget_max // 4,
        budget_currency="CNY",
        region=None if foreign else region(rng),
        country=rng.choice(FOREIGN) if foreign else "CN",
        rights=tuple(rng.sample(RIGHTS, 1)) if rng.random() < 0.3 else (),
        domestic_only=rng.random() < 0.1,
    )


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed_ms(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 supplies, 200 demands")
    parser.add_argument("--supplies", type=int)
    parser.add_argument("--demands", type=int)
    parser.add_argument("--brute-force", type=int, help="demands scored by brute force")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    n_supplies = args.supplies or (10_000 if args.quick else 100_000)
    n_demands = args.demands or (200 if args.quick else 1_000)
    n_brute = args.brute_force or (10 if args.quick else 30)
    rng = random.Random(args.seed)

    print(f"docking bench: {n_supplies:,} supplies, {n_demands:,} demands, seed {args.seed}")
    rss_start = rss_mib()
    start = time.perf_counter()
    supplies = [supply(rng, i) for i in range(n_supplies)]
    demands = [demand(rng, i) for i in range(n_demands)]
    print(f"  generated in {time.perf_counter() - start:.1f} s; RSS {rss_mib():.0f} MiB")

    DockingIndex([supplies[0]]).match(demands[0])  # jieba's dictionary loads once, not timed
    gc.collect()
    rss_before = rss_mib()
    start = time.perf_counter()
    index = DockingIndex(supplies)
    build_s = time.perf_counter() - start
    gc.collect()
    rss_after = rss_mib()
    print(
        f"build      {build_s:8.1f} s   ({n_supplies / build_s:,.0f} documents/s)   "
        f"target <= {BUILD_S_TARGET:.0f} s  {verdict(build_s <= BUILD_S_TARGET)}"
    )
    print(
        f"memory     {rss_after:8.0f} MiB resident (index and corpus added "
        f"{rss_after - rss_before:.0f} MiB; {rss_start:.0f} MiB at start)   "
        f"target <= {RSS_MIB_TARGET:.0f} MiB  {verdict(rss_after <= RSS_MIB_TARGET)}"
    )

    fresh = [supply(rng, n_supplies + i) for i in range(200)]
    upserts = [timed_ms(lambda d=d: index.upsert(d))[0] for d in fresh]
    first = top10 = 0
    for d in fresh[:20]:  # a demand describing the fresh supply finds it
        probe = Document("demand:probe", "demand", d.text, d.keywords, d.ipc, d.trl)
        found = [m.document_id for m in index.match(replace(probe, region=d.region), k=10)]
        first += found[:1] == [d.id]
        top10 += d.id in found
    removes = [timed_ms(lambda d=d: index.remove(d.id))[0] for d in fresh]
    print(
        f"freshness  upsert p50 {percentile(upserts, 50):.2f} ms, p99 "
        f"{percentile(upserts, 99):.2f} ms; remove p50 {percentile(removes, 50):.2f} ms, "
        f"p99 {percentile(removes, 99):.2f} ms; a demand describing a fresh supply finds it "
        f"first {first}/20, in the top 10 {top10}/20"
    )

    latencies = [timed_ms(lambda q=q: index.match(q, k=10))[0] for q in demands]
    p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
    print(
        f"query      top-10 p50 {p50:.1f} ms  p95 {p95:.1f} ms  p99 {p99:.1f} ms  "
        f"max {max(latencies):.1f} ms   target p95 <= {QUERY_P95_MS_TARGET:.0f} ms  "
        f"{verdict(p95 <= QUERY_P95_MS_TARGET)}"
    )
    filters = (
        Filters(regions=frozenset({"CN-SH", "CN-JS", "CN-ZJ", "CN-AH"})),
        Filters(kinds=frozenset({"invention_patent"}), min_trl=5),
        Filters(price_max=50_000_000, currency="CNY"),
        Filters(rights=frozenset({"assignment"}), domestic_only=True),
    )
    filtered = [
        timed_ms(lambda q=q, i=i: index.match(q, k=10, filters=filters[i % 4]))[0]
        for i, q in enumerate(demands)
    ]
    print(
        f"           with filters p50 {percentile(filtered, 50):.1f} ms  p95 "
        f"{percentile(filtered, 95):.1f} ms  p99 {percentile(filtered, 99):.1f} ms"
    )

    sample = demands[:: max(1, len(demands) // n_brute)][:n_brute]
    corpus = index.documents()
    analysis_ms, _ = timed_ms(lambda: brute_force_match(corpus, sample[0], k=10))
    brute, agree = [], 0
    for q in sample:
        ms, expected = timed_ms(lambda q=q: brute_force_match(corpus, q, k=10))
        brute.append(ms)
        agree += index.match(q, k=10) == expected
    b50, b95 = percentile(brute, 50), percentile(brute, 95)
    print(
        f"baseline   brute force over {len(corpus):,} supplies on {len(sample)} demands: p50 "
        f"{b50:.0f} ms  p95 {b95:.0f} ms (its corpus analysis, once: {analysis_ms / 1000:.1f} s)"
    )
    print(
        f"           index speed-up at p50: {b50 / p50:.0f}x; top-10 identical on "
        f"{agree}/{len(sample)} demands  {verdict(agree == len(sample))}"
    )


if __name__ == "__main__":
    main()
