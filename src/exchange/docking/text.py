"""Tokens for docking (供需对接): mixed Chinese and English text to index terms and concepts.

CJK runs are segmented by jieba in search mode (a long word also yields its dictionary sub-words);
Latin runs are lower-cased and stemmed by the Snowball English stemmer; stop words of both languages
are dropped; digits are kept. BM25 alone cannot match 固态电池 with "solid-state battery", so a
built-in bilingual glossary (``GLOSSARY`` below, written for this module, nothing downloaded) maps
terms of both languages to shared concept tokens such as ``@solid_state_battery``, emitted alongside
the words. A glossary term is found where it occurs as a maximal match: 电解质 (electrolyte) does
not also count as 电解 (electrolysis); an entry names its broader concepts instead (固态电池 →
@battery). Chinese terms match as substrings of a CJK run, so segmentation cannot hide them;
English terms match as sequences of stems inside one clause (punctuation ends a phrase, a hyphen or
a space does not). Deterministic: the same text always gives the same tokens.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jieba  # type: ignore[import-untyped]
import snowballstemmer  # type: ignore[import-untyped]

__all__ = ["CONCEPT_PREFIX", "GLOSSARY", "concepts_of", "token_surfaces", "tokens"]

CONCEPT_PREFIX = "@"
_PHRASE_WORDS_MAX = 5
_STEM_CACHE_MAX = 200_000

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# A clause ends at anything but letters, digits, CJK, whitespace, hyphens and apostrophes.
_CLAUSE_BREAK = re.compile(rf"[^0-9a-z{_CJK}\s\-']+")
_RUN = re.compile(rf"([{_CJK}]+)|([0-9a-z]+)")

STOP_WORDS_EN = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    may me might more most must my myself no nor not now of off on once only or other our ours
    ourselves out over own same shall she should so some such than that the their theirs them
    themselves then there these they this those through thus to too under until up upon very via
    was we were what when where whereas wherein whether which while who whom why will with within
    without would you your yours yourself yourselves etc eg ie s t
    """.split()  # noqa: SIM905 - a word list reads better as text
)

STOP_WORDS_ZH = frozenset(
    """
    的 了 和 与 及 或 在 是 等 对 中 其 之 为 以 于 由 将 把 被 从 向 并 且 也 而 则 该 此 这 那 有
    个 种 所 其中 及其 以及 或者 并且 而且 一种 一个 一些 通过 用于 所述 进行 具有 包括 可以 能够
    采用 使用 利用 涉及 本发明 本 发明 提供 公开 属于 技术领域 领域 如何 我们 我 你 他 她 它 他们
    需要 希望 寻求 寻找
    """.split()  # noqa: SIM905
)

# Bilingual glossary of technology terms: ``concept | Chinese terms | English terms | broader``.
# Terms are comma-separated; English terms are matched after stemming, so plurals need no entry.
# An indented line continues the one above.
GLOSSARY = """
battery | 电池, 蓄电池 | battery, accumulator |
lithium | 锂 | lithium |
sodium | 钠 | sodium |
lithium_ion_battery | 锂离子电池, 锂电池 | lithium-ion battery, li-ion battery | battery, lithium
solid_state_battery | 固态电池, 全固态电池 | solid-state battery, all-solid-state battery | battery
sodium_ion_battery | 钠离子电池 | sodium-ion battery | battery, sodium
lithium_iron_phosphate | 磷酸铁锂 | lithium iron phosphate, lfp | lithium
electrolyte | 电解质, 电解液 | electrolyte |
solid_electrolyte | 固态电解质, 固体电解质 | solid electrolyte, solid-state electrolyte |
  electrolyte
cathode | 正极, 阴极 | cathode, positive electrode | electrode
anode | 负极, 阳极 | anode, negative electrode | electrode
electrode | 电极 | electrode |
separator | 隔膜 | separator |
fuel_cell | 燃料电池 | fuel cell |
hydrogen | 氢, 氢气 | hydrogen |
hydrogen_storage | 储氢 | hydrogen storage | hydrogen
electrolysis | 电解 | electrolysis |
water_electrolysis | 电解水 | water electrolysis | electrolysis, hydrogen
energy_storage | 储能 | energy storage |
supercapacitor | 超级电容器, 超级电容 | supercapacitor, ultracapacitor |
photovoltaic | 光伏 | photovoltaic, pv |
solar_cell | 太阳能电池, 太阳电池 | solar cell | photovoltaic
perovskite | 钙钛矿 | perovskite |
wind_power | 风电, 风力发电 | wind power, wind turbine, wind energy |
battery_management | 电池管理系统 | battery management system, bms | battery
charging | 充电 | charging, charger |
charging_station | 充电桩, 充电站 | charging station, charging pile | charging
power_grid | 电网 | power grid, electric grid |
smart_grid | 智能电网 | smart grid | power_grid
inverter | 逆变器 | inverter |
nuclear_power | 核电 | nuclear power |
thermal_management | 热管理 | thermal management |
heat_pump | 热泵 | heat pump |
carbon_capture | 碳捕集, 碳捕获 | carbon capture |
energy_density | 能量密度 | energy density |
cycle_life | 循环寿命 | cycle life |
silicon | 硅 | silicon |
graphite | 石墨 | graphite |
cobalt | 钴 | cobalt |
nickel | 镍 | nickel |
electric_vehicle | 电动汽车, 新能源汽车 | electric vehicle, ev | vehicle
autonomous_driving | 自动驾驶, 无人驾驶 | autonomous driving, self-driving, driverless |
lidar | 激光雷达 | lidar |
radar | 雷达 | radar |
motor | 电机, 电动机 | motor, electric motor |
engine | 发动机 | engine |
vehicle | 汽车, 车辆 | vehicle, car, automobile |
drone | 无人机 | drone, uav, unmanned aerial vehicle |
aircraft | 飞机, 飞行器 | aircraft |
satellite | 卫星 | satellite |
rocket | 火箭 | rocket |
artificial_intelligence | 人工智能 | artificial intelligence, ai |
machine_learning | 机器学习 | machine learning |
deep_learning | 深度学习 | deep learning | machine_learning
neural_network | 神经网络 | neural network |
convolutional_neural_network | 卷积神经网络 | convolutional neural network, cnn | neural_network
large_language_model | 大语言模型, 大模型 | large language model, llm | artificial_intelligence
natural_language_processing | 自然语言处理 | natural language processing, nlp |
computer_vision | 计算机视觉, 机器视觉 | computer vision, machine vision |
image | 图像 | image |
image_recognition | 图像识别 | image recognition | image
image_processing | 图像处理 | image processing | image
object_detection | 目标检测 | object detection |
speech_recognition | 语音识别 | speech recognition, voice recognition |
speech_synthesis | 语音合成 | speech synthesis, text-to-speech |
face_recognition | 人脸识别 | face recognition, facial recognition |
reinforcement_learning | 强化学习 | reinforcement learning | machine_learning
federated_learning | 联邦学习 | federated learning | machine_learning
generative_ai | 生成式人工智能 | generative ai, generative model | artificial_intelligence
knowledge_graph | 知识图谱 | knowledge graph |
recommender_system | 推荐系统 | recommender system |
machine_translation | 机器翻译 | machine translation |
data_mining | 数据挖掘 | data mining |
big_data | 大数据 | big data |
cloud_computing | 云计算 | cloud computing |
edge_computing | 边缘计算 | edge computing |
blockchain | 区块链 | blockchain |
internet_of_things | 物联网 | internet of things, iot |
digital_twin | 数字孪生 | digital twin |
quantum_computing | 量子计算, 量子计算机 | quantum computing, quantum computer |
quantum_communication | 量子通信 | quantum communication |
encryption | 加密, 密码学 | encryption, cryptography |
cybersecurity | 网络安全 | cybersecurity, network security |
privacy | 隐私 | privacy |
database | 数据库 | database |
algorithm | 算法 | algorithm |
software | 软件 | software |
operating_system | 操作系统 | operating system |
search_engine | 搜索引擎 | search engine |
chatbot | 聊天机器人 | chatbot |
robot | 机器人 | robot, robotic, robotics |
industrial_robot | 工业机器人 | industrial robot | robot
robotic_arm | 机械臂 | robotic arm, robot arm, manipulator | robot
humanoid_robot | 人形机器人 | humanoid robot | robot
surgical_robot | 手术机器人 | surgical robot | robot
exoskeleton | 外骨骼 | exoskeleton |
path_planning | 路径规划 | path planning |
navigation | 导航 | navigation |
positioning | 定位 | positioning, localization, localisation |
virtual_reality | 虚拟现实 | virtual reality, vr |
augmented_reality | 增强现实 | augmented reality |
semiconductor | 半导体 | semiconductor |
chip | 芯片, 集成电路 | chip, microchip, integrated circuit |
wafer | 晶圆 | wafer |
lithography | 光刻 | lithography, photolithography |
photoresist | 光刻胶 | photoresist | lithography
etching | 刻蚀, 蚀刻 | etching |
chip_packaging | 封装 | packaging, encapsulation |
transistor | 晶体管 | transistor |
field_effect_transistor | 场效应晶体管, 场效应管 | field-effect transistor, mosfet | transistor
silicon_carbide | 碳化硅 | silicon carbide | semiconductor
gallium_nitride | 氮化镓 | gallium nitride | semiconductor
power_device | 功率器件, 功率半导体 | power device, power semiconductor | semiconductor
sensor | 传感器 | sensor |
image_sensor | 图像传感器 | image sensor | sensor, image
gas_sensor | 气体传感器 | gas sensor | sensor
pressure_sensor | 压力传感器 | pressure sensor | sensor
temperature_sensor | 温度传感器 | temperature sensor | sensor
biosensor | 生物传感器 | biosensor | sensor
mems | 微机电系统 | mems, microelectromechanical system |
processor | 处理器 | processor, cpu |
gpu | 图形处理器 | gpu, graphics processor | processor
fpga | 现场可编程门阵列 | fpga, field-programmable gate array |
microcontroller | 单片机 | microcontroller, mcu |
memory | 存储器, 内存 | memory |
flash_memory | 闪存 | flash memory | memory
display | 显示屏, 显示器, 显示面板 | display, display panel |
oled | 有机发光二极管 | oled, organic light-emitting diode | display
led | 发光二极管 | led, light-emitting diode |
laser | 激光, 激光器 | laser |
optical_fiber | 光纤 | optical fiber, optical fibre, fiber optic |
optical_communication | 光通信 | optical communication |
antenna | 天线 | antenna |
wireless_communication | 无线通信 | wireless communication |
communication | 通信 | communication, telecommunication |
radio_frequency | 射频 | radio frequency, rf |
signal_processing | 信号处理 | signal processing |
circuit | 电路 | circuit |
printed_circuit_board | 电路板, 印刷电路板 | printed circuit board, pcb | circuit
power_supply | 电源 | power supply |
amplifier | 放大器 | amplifier |
camera | 摄像头, 相机 | camera |
infrared | 红外 | infrared |
ultrasound | 超声, 超声波 | ultrasonic, ultrasound |
terahertz | 太赫兹 | terahertz |
microwave | 微波 | microwave |
power_electronics | 电力电子 | power electronics |
electric_power | 电力 | electric power, electricity |
transformer | 变压器 | transformer |
cable | 电缆 | cable |
lighting | 照明 | lighting |
smart_home | 智能家居 | smart home |
video | 视频 | video |
audio | 音频 | audio |
encoding | 编码 | encoding, codec |
compression | 压缩 | compression |
vaccine | 疫苗 | vaccine, vaccination |
mrna_vaccine | 核酸疫苗 | mrna vaccine, nucleic acid vaccine | vaccine
antibody | 抗体 | antibody |
monoclonal_antibody | 单克隆抗体, 单抗 | monoclonal antibody | antibody
antigen | 抗原 | antigen |
protein | 蛋白, 蛋白质 | protein |
enzyme | 酶 | enzyme |
gene | 基因 | gene, genetic |
gene_editing | 基因编辑 | gene editing, genome editing, crispr | gene
gene_therapy | 基因治疗 | gene therapy | gene
cell_therapy | 细胞治疗 | cell therapy |
car_t | 嵌合抗原受体 | car-t, chimeric antigen receptor | cell_therapy
stem_cell | 干细胞 | stem cell |
sequencing | 测序 | sequencing |
genome | 基因组 | genome |
dna | 脱氧核糖核酸 | dna, deoxyribonucleic acid |
rna | 核糖核酸 | rna, ribonucleic acid |
peptide | 多肽, 肽 | peptide, polypeptide |
drug | 药物, 药品 | drug, pharmaceutical, medicine |
small_molecule | 小分子 | small molecule | drug
drug_delivery | 药物递送, 给药 | drug delivery | drug
nanoparticle | 纳米颗粒, 纳米粒子 | nanoparticle |
lipid_nanoparticle | 脂质纳米颗粒 | lipid nanoparticle, lnp | nanoparticle
tumor | 肿瘤 | tumor, tumour |
cancer | 癌, 癌症 | cancer |
immunotherapy | 免疫治疗, 免疫疗法 | immunotherapy |
diagnosis | 诊断 | diagnosis, diagnostic |
in_vitro_diagnostics | 体外诊断 | in vitro diagnostic, ivd | diagnosis
biomarker | 生物标志物 | biomarker |
medical_device | 医疗器械 | medical device |
medical_imaging | 医学影像 | medical imaging |
magnetic_resonance | 磁共振 | magnetic resonance, mri |
computed_tomography | 计算机断层扫描 | computed tomography |
endoscope | 内窥镜 | endoscope |
implant | 植入物 | implant |
orthopedics | 骨科 | orthopedic, orthopaedic |
diabetes | 糖尿病 | diabetes |
insulin | 胰岛素 | insulin |
virus | 病毒 | virus, viral |
bacteria | 细菌 | bacteria, bacterial |
antibiotic | 抗生素 | antibiotic |
probiotic | 益生菌 | probiotic |
fermentation | 发酵 | fermentation |
traditional_chinese_medicine | 中药, 中医药 | traditional chinese medicine, tcm |
cardiovascular | 心血管 | cardiovascular |
alzheimers_disease | 阿尔茨海默 | alzheimer |
clinical_trial | 临床试验 | clinical trial |
pcr | 聚合酶链式反应 | pcr, polymerase chain reaction |
microfluidics | 微流控 | microfluidic, microfluidics |
organoid | 类器官 | organoid |
synthetic_biology | 合成生物学 | synthetic biology |
wearable | 可穿戴 | wearable |
health_monitoring | 健康监测 | health monitoring |
heart_rate | 心率 | heart rate |
blood_glucose | 血糖 | blood glucose |
rehabilitation | 康复 | rehabilitation |
elderly_care | 养老 | elderly care |
hearing_aid | 助听器 | hearing aid |
prosthesis | 假肢 | prosthesis, prosthetic |
graphene | 石墨烯 | graphene |
carbon_nanotube | 碳纳米管 | carbon nanotube |
nanomaterial | 纳米材料 | nanomaterial |
composite_material | 复合材料 | composite material, composite |
carbon_fiber | 碳纤维 | carbon fiber, carbon fibre |
polymer | 聚合物, 高分子 | polymer |
ceramic | 陶瓷 | ceramic |
alloy | 合金 | alloy |
titanium_alloy | 钛合金 | titanium alloy | alloy
aluminium_alloy | 铝合金 | aluminum alloy, aluminium alloy | alloy
high_entropy_alloy | 高熵合金 | high-entropy alloy | alloy
steel | 钢, 钢材 | steel |
stainless_steel | 不锈钢 | stainless steel | steel
coating | 涂层, 镀层 | coating |
thin_film | 薄膜 | thin film, film |
membrane | 膜 | membrane |
catalyst | 催化剂 | catalyst |
catalysis | 催化 | catalysis, catalytic |
photocatalysis | 光催化 | photocatalysis, photocatalyst, photocatalytic | catalysis
electrocatalysis | 电催化 | electrocatalysis, electrocatalyst | catalysis
adsorption | 吸附 | adsorption, adsorbent |
metal_organic_framework | 金属有机框架 | metal-organic framework, mof |
zeolite | 沸石, 分子筛 | zeolite, molecular sieve |
aerogel | 气凝胶 | aerogel |
hydrogel | 水凝胶 | hydrogel |
biodegradable | 可降解, 生物降解 | biodegradable |
plastic | 塑料 | plastic |
rubber | 橡胶 | rubber |
fiber | 纤维 | fiber, fibre |
textile | 纺织 | textile |
glass | 玻璃 | glass |
cement | 水泥 | cement |
concrete | 混凝土 | concrete |
magnetic_material | 磁性材料 | magnetic material |
rare_earth | 稀土 | rare earth |
permanent_magnet | 永磁 | permanent magnet |
superconductor | 超导 | superconductor, superconducting |
quantum_dot | 量子点 | quantum dot |
powder | 粉末 | powder |
metallurgy | 冶金 | metallurgy |
powder_metallurgy | 粉末冶金 | powder metallurgy | metallurgy, powder
welding | 焊接 | welding |
casting | 铸造 | casting |
forging | 锻造 | forging |
heat_treatment | 热处理 | heat treatment |
corrosion | 腐蚀 | corrosion |
anticorrosion | 防腐 | anticorrosion, anti-corrosion | corrosion
lubricant | 润滑剂, 润滑油 | lubricant |
adhesive | 胶粘剂, 粘合剂 | adhesive |
solvent | 溶剂 | solvent |
oxide | 氧化物 | oxide |
polymerization | 聚合 | polymerization, polymerisation |
chemical_synthesis | 合成 | synthesis |
crystal | 晶体 | crystal |
electrochemistry | 电化学 | electrochemistry, electrochemical |
additive_manufacturing | 增材制造 | additive manufacturing, 3d printing | printing
printing | 打印, 印刷 | printing, print |
numerical_control | 数控 | cnc, numerical control |
machine_tool | 机床 | machine tool |
machining | 机械加工, 切削加工 | machining |
injection_moulding | 注塑 | injection molding, injection moulding |
mould | 模具 | mold, mould |
bearing | 轴承 | bearing |
gear | 齿轮 | gear |
reducer | 减速器, 减速机 | reducer, gearbox |
hydraulics | 液压 | hydraulic |
pneumatics | 气动 | pneumatic |
valve | 阀, 阀门 | valve |
pump | 泵 | pump |
compressor | 压缩机 | compressor |
turbine | 涡轮, 汽轮机 | turbine |
automation | 自动化 | automation, automated |
production_line | 生产线 | production line, assembly line |
smart_manufacturing | 智能制造 | smart manufacturing, intelligent manufacturing |
industrial_internet | 工业互联网 | industrial internet |
programmable_logic_controller | 可编程逻辑控制器 | plc, programmable logic controller |
control_system | 控制系统 | control system |
fault_diagnosis | 故障诊断 | fault diagnosis |
predictive_maintenance | 预测性维护 | predictive maintenance |
nondestructive_testing | 无损检测 | nondestructive testing, non-destructive testing | inspection
inspection | 检测 | detection, inspection |
measurement | 测量 | measurement, measuring |
calibration | 校准, 标定 | calibration |
vibration | 振动 | vibration |
noise_reduction | 降噪 | noise reduction |
conveyor | 输送机 | conveyor |
crane | 起重机 | crane |
automated_guided_vehicle | 自动导引车 | agv, automated guided vehicle | vehicle
logistics | 物流 | logistics |
wastewater | 废水, 污水 | wastewater, sewage |
water_treatment | 水处理 | water treatment |
desalination | 海水淡化 | desalination |
waste_gas | 废气 | waste gas, exhaust gas |
denitrification | 脱硝 | denitrification |
desulfurization | 脱硫 | desulfurization, desulphurization |
air_purification | 空气净化 | air purification |
solid_waste | 固废, 固体废物 | solid waste |
recycling | 回收, 再生利用 | recycling |
heavy_metal | 重金属 | heavy metal |
soil_remediation | 土壤修复 | soil remediation |
carbon_neutrality | 碳中和 | carbon neutral, carbon neutrality |
emission_reduction | 减排 | emission reduction |
pollution | 污染 | pollution |
biomass | 生物质 | biomass |
biofuel | 生物燃料 | biofuel |
natural_gas | 天然气 | natural gas |
petroleum | 石油 | petroleum, crude oil |
coal | 煤, 煤炭 | coal |
boiler | 锅炉 | boiler |
heat_exchanger | 换热器 | heat exchanger |
refrigeration | 制冷 | refrigeration |
energy_saving | 节能 | energy saving, energy efficiency |
waste_heat | 余热 | waste heat |
agriculture | 农业 | agriculture, agricultural |
smart_agriculture | 智慧农业, 精准农业 | smart agriculture, precision agriculture | agriculture
crop | 作物, 农作物 | crop |
seed | 种子 | seed |
breeding | 育种 | breeding |
fertilizer | 肥料, 化肥 | fertilizer, fertiliser |
pesticide | 农药 | pesticide |
irrigation | 灌溉 | irrigation |
greenhouse | 温室 | greenhouse |
aquaculture | 水产养殖 | aquaculture |
livestock | 畜牧 | livestock |
food | 食品 | food |
food_safety | 食品安全 | food safety | food
preservation | 保鲜 | preservation, fresh-keeping |
rice | 水稻 | rice |
wheat | 小麦 | wheat |
tea | 茶叶 | tea |
ship | 船舶 | ship |
underwater | 水下 | underwater |
bridge | 桥梁 | bridge |
tunnel | 隧道 | tunnel |
building | 建筑 | building, architecture |
prefabricated_building | 装配式建筑 | prefabricated building | building
railway | 铁路, 轨道交通 | railway, rail transit |
high_speed_rail | 高铁, 高速铁路 | high-speed rail, high-speed railway | railway
traffic | 交通 | traffic, transportation |
intelligent_transportation | 智能交通 | intelligent transportation | traffic
geographic_information | 地理信息 | geographic information, gis |
remote_sensing | 遥感 | remote sensing |
earthquake | 地震 | earthquake, seismic |
mining | 采矿, 矿山 | mining |
geology | 地质 | geology, geological |
"""


@dataclass(frozen=True, slots=True)
class _Glossary:
    zh: dict[str, tuple[str, ...]]  # Chinese term → concept tokens (its own and the broader ones)
    zh_by_first: dict[str, tuple[str, ...]]  # first character → its terms, longest first
    en: dict[tuple[str, ...], tuple[str, ...]]  # stem sequence → concept tokens


def _stem_word(word: str) -> str:
    stem: str = _STEMMER.stemWord(word)
    return stem


_STEMMER: Any = snowballstemmer.stemmer("english")
_stem = lru_cache(maxsize=_STEM_CACHE_MAX)(_stem_word)


def _english_words(phrase: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in re.findall(r"[0-9a-z]+", phrase.lower()))


def _terms(cell: str) -> list[str]:
    return [term.strip() for term in cell.split(",") if term.strip()]


def _parse_glossary(table: str) -> _Glossary:
    rows: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for line in re.sub(r"\n\s+", " ", table.strip()).splitlines():  # indented lines continue
        concept, zh_cell, en_cell, broader_cell = (part.strip() for part in line.split("|"))
        assert concept not in rows, f"glossary concept {concept} twice"
        rows[concept] = (_terms(zh_cell), _terms(en_cell), _terms(broader_cell))

    def closure(concept: str) -> tuple[str, ...]:
        seen = [concept]
        for name in seen:
            for parent in rows[name][2]:
                assert parent in rows, f"glossary concept {name}: unknown broader {parent}"
                if parent not in seen:
                    seen.append(parent)
        return tuple(CONCEPT_PREFIX + name for name in seen)

    zh: dict[str, tuple[str, ...]] = {}
    en: dict[tuple[str, ...], tuple[str, ...]] = {}
    for concept, (zh_terms, en_terms, _) in rows.items():
        concept_tokens = closure(concept)
        for term in zh_terms:
            assert zh.get(term, concept_tokens) == concept_tokens, f"glossary term {term} twice"
            zh[term] = concept_tokens
        for term in en_terms:
            words = _english_words(term)
            assert 0 < len(words) <= _PHRASE_WORDS_MAX, f"glossary term {term!r}"
            assert en.get(words, concept_tokens) == concept_tokens, f"glossary term {term!r} twice"
            en[words] = concept_tokens
    by_first: dict[str, list[str]] = {}
    for term in zh:
        by_first.setdefault(term[0], []).append(term)
    zh_by_first = {c: tuple(sorted(ts, key=lambda t: (-len(t), t))) for c, ts in by_first.items()}
    return _Glossary(zh=zh, zh_by_first=zh_by_first, en=en)


_GLOSSARY = _parse_glossary(GLOSSARY)

_segmenter: Any = None
_segmenter_lock = threading.Lock()


def _jieba() -> Any:
    """A jieba tokenizer of our own (the global one stays untouched), set up once and quietly."""
    global _segmenter
    if _segmenter is None:
        with _segmenter_lock:
            if _segmenter is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)
                segmenter = jieba.Tokenizer()  # the dictionary ships inside the package
                segmenter.initialize()
                for term in sorted(_GLOSSARY.zh):
                    if len(term) > 1:
                        segmenter.add_word(term)
                _segmenter = segmenter
    return _segmenter


def _maximal(spans: list[tuple[int, int, tuple[str, ...]]]) -> Iterator[tuple[str, ...]]:
    """Concepts of the spans that no other span contains."""
    for start, end, concept_tokens in spans:
        if not any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in spans):
            yield concept_tokens


def _cjk_concepts(run: str) -> list[tuple[str, str]]:
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    for i, char in enumerate(run):
        for term in _GLOSSARY.zh_by_first.get(char, ()):
            if run.startswith(term, i):
                spans.append((i, i + len(term), _GLOSSARY.zh[term]))
    return [(c, c) for concept_tokens in _maximal(spans) for c in concept_tokens]


def _latin_concepts(stems: list[str]) -> list[tuple[str, str]]:
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    for i in range(len(stems)):
        for n in range(1, min(_PHRASE_WORDS_MAX, len(stems) - i) + 1):
            concept_tokens = _GLOSSARY.en.get(tuple(stems[i : i + n]))
            if concept_tokens is not None:
                spans.append((i, i + n, concept_tokens))
    return [(c, c) for concept_tokens in _maximal(spans) for c in concept_tokens]


def _latin_group(words: list[str]) -> list[tuple[str, str]]:
    stems = [_stem(w) for w in words]
    out = [
        (stem, word)
        for word, stem in zip(words, stems, strict=True)
        if word not in STOP_WORDS_EN and (len(word) > 1 or word.isdigit())
    ]
    return out + _latin_concepts(stems)


def _cjk_run(run: str) -> list[tuple[str, str]]:
    words: list[str] = _jieba().lcut_for_search(run)
    out = [(w, w) for w in words if w not in STOP_WORDS_ZH]
    return out + _cjk_concepts(run)


def _pairs(text: str) -> Iterator[tuple[str, str]]:
    """(token, surface word) in text order, concept tokens after the run they were found in."""
    normal = unicodedata.normalize("NFKC", text).lower()
    for clause in _CLAUSE_BREAK.split(normal):
        latin: list[str] = []
        for match in _RUN.finditer(clause):
            cjk, word = match.groups()
            if word is not None:
                latin.append(word)
                continue
            if latin:
                yield from _latin_group(latin)
                latin = []
            yield from _cjk_run(cjk)
        if latin:
            yield from _latin_group(latin)


def tokens(text: str) -> list[str]:
    """Index terms of ``text``: jieba words, English stems, digits, and glossary concept tokens."""
    return [token for token, _ in _pairs(text)]


def token_surfaces(text: str) -> dict[str, str]:
    """Each token of ``text`` → the word it first came from (a stem's word; a concept itself)."""
    surfaces: dict[str, str] = {}
    for token, surface in _pairs(text):
        surfaces.setdefault(token, surface)
    return surfaces


def concepts_of(text: str) -> list[str]:
    """The glossary concept tokens found in ``text``, in order, without repeats."""
    return list(dict.fromkeys(t for t in tokens(text) if t.startswith(CONCEPT_PREFIX)))
