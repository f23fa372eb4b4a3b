"""Identifier checks: published real-world examples, refusals, and the check-digit properties."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from exchange.identifiers import (
    USCC_ALPHABET,
    CountryCode,
    IpcSymbol,
    PatentApplicationNumber,
    Uscc,
    is_country,
    is_valid_uscc,
    normalize_ipc,
    normalize_patent_application_number,
    patent_application_check_digit,
    uscc_check_character,
)

PATENT_CHECK_CHARACTERS = "0123456789X"

# --- Unified social credit codes (GB 32100-2015) -------------------------------------------------

PUBLISHED_USCCS = [
    # Huawei Technologies Co., Ltd.: https://zh.wikipedia.org/zh-hk/華為, infobox "機構代碼".
    "914403001922038216",
    # 中建三局集团有限公司: https://apidoc.cneptp.com/enterprise/enterprise-baseinfo/工商基本信息.html,
    # "请求示例" creditCode.
    "91420000757013137P",
    # 阿里巴巴(中国)网络技术有限公司: http://docapi.xdua.com/api/hannm/lonlat2int.html, "返回数据"
    # fields "code" and "code_tax".
    "91330100716105852F",
    # https://yizhanzhixiao.com/link/1796942066087784707.html, answer 2: a company's code whose
    # check character E is worked out step by step (sum 1495, 1495 mod 31 = 17, 31 - 17 = 14 = E).
    "91512081MA62K0260E",
    # https://segmentfault.com/q/1010000015163528: listed by the asker as a real code that fails the
    # check; it does not fail (the other codes listed there do, see below).
    "9131000063159284XQ",
    # winjs-dev/cloud-utils, src/isUnifiedSocialCreditCode.ts, @example block (one individual
    # business, registration type 92).
    "91230184MA1BUFLT44",
    "92371000MA3MXH0E3W",
]


@pytest.mark.parametrize("code", PUBLISHED_USCCS)
def test_published_uscc_is_valid(code: str) -> None:
    assert is_valid_uscc(code)
    assert uscc_check_character(code[:17]) == code[17]


def test_uscc_weights_follow_the_standard() -> None:
    # GB 32100-2015 table 2, W_i = 3^(i-1) mod 31, as printed in the standard's worked example.
    printed = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    assert [pow(3, i, 31) for i in range(17)] == printed


def test_uscc_worked_example_of_the_standard_is_refused() -> None:
    # GB 32100-2015 worked example (copied at https://www.yc00.com/web/1713075042a2177900.html and
    # https://wddqw.com/doc/53f79e6a996648d7c1c708a1284ac850ad020467.html): the sum is 1640,
    # 1640 mod 31 = 28, check character 31 - 28 = 3, so "91350100M000100Y4Z" is not a valid code.
    assert uscc_check_character("91350100M000100Y4") == "3"
    assert not is_valid_uscc("91350100M000100Y4Z")
    assert is_valid_uscc("91350100M000100Y43")


def test_uscc_check_value_31_maps_to_0() -> None:
    # MOD(31, 31) = 0 in the standard: a sum divisible by 31 gives check character '0'.
    assert uscc_check_character("0" * 17) == "0"


@pytest.mark.parametrize(
    "code",
    [
        # Real pilot-era Fujian codes issued before the national rule, named in aarioai/id-rule,
        # chinese_org_id.go (header comment) and https://segmentfault.com/q/1010000015163528.
        # They are lawful codes that GB 32100-2015 checking refuses; this module is strict.
        "91350100M0001TGQXM",
        "91350211M0000XUF46",
        "91350203M0001FUE2P",
    ],
)
def test_pilot_era_codes_outside_the_standard_are_refused(code: str) -> None:
    assert not is_valid_uscc(code)


def test_uscc_with_one_changed_character_is_refused() -> None:
    assert not is_valid_uscc("914403001922038226")
    assert not is_valid_uscc("91420000757013137Q")


@pytest.mark.parametrize("forbidden", ["I", "O", "S", "V", "Z"])
def test_uscc_with_forbidden_letter_is_refused(forbidden: str) -> None:
    code = "9144030019220382" + forbidden + "6"
    assert not is_valid_uscc(code)
    with pytest.raises(ValueError, match=f"character 17 of a USCC cannot be '{forbidden}'"):
        uscc_check_character(code[:17])


@pytest.mark.parametrize("code", ["", "91440300192203821", "9144030019220382166"])
def test_uscc_of_wrong_length_is_refused(code: str) -> None:
    assert not is_valid_uscc(code)


def test_uscc_check_character_needs_seventeen_characters() -> None:
    with pytest.raises(ValueError, match="first 17 characters"):
        uscc_check_character("9144030019220382")


def test_lowercase_uscc_is_not_valid_as_such() -> None:
    # The standard's character set is upper case; is_valid_uscc does not fold case.
    assert not is_valid_uscc("91420000757013137p")


@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_check_character_detects_every_single_substitution(first17: str) -> None:
    # 31 is prime and every weight is non-zero mod 31, so changing one character changes the sum.
    code = first17 + uscc_check_character(first17)
    assert is_valid_uscc(code)
    for position in range(18):
        for replacement in USCC_ALPHABET:
            if replacement != code[position]:
                changed = code[:position] + replacement + code[position + 1 :]
                assert not is_valid_uscc(changed), (code, changed)


@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
def test_uscc_check_character_detects_adjacent_swaps_in_first_seventeen(first17: str) -> None:
    # Neighbouring weights differ (W_(i+1) - W_i = 2 W_i, non-zero mod 31).
    code = first17 + uscc_check_character(first17)
    for position in range(16):
        a, b = code[position], code[position + 1]
        if a != b:
            swapped = code[:position] + b + a + code[position + 2 :]
            assert not is_valid_uscc(swapped), (code, swapped)


# --- CN patent application numbers ---------------------------------------------------------------

PUBLISHED_APPLICATION_NUMBERS = [
    # 12-digit form (since October 2003); Google Patents "Application number" field, which appends
    # the kind letter 'A' to the number (e.g. "CN202010201625.XA").
    "202010201625.X",  # https://patents.google.com/patent/CN111444990A/en
    "201280017678.X",  # https://patents.google.com/patent/CN103460723B/en (PCT entry, type 8)
    "202111044860.1",  # https://patents.google.com/patent/CN113820856A/en
    "202010794468.8",  # CN111949864B (Google Patents page, publication number line)
    "201911318037.8",  # https://patents.google.com/patent/CN111061695B/en
    "201610018743.0",  # https://patents.google.com/patent/CN105610521B/en
    "201310199090.7",  # https://patents.google.com/patent/CN103287282B/en
    "201110059923.0",  # https://patents.google.com/patent/CN102681861A/en, "Priority to ..."
    "200610113733.1",  # https://patents.google.com/patent/CN1936884A/en ("CNA2006101137331A")
    # Utility model (type 2): CNIPA invalidation decision 12498, "申请(专利)号",
    # http://www.hnzlw.com/wuxiao/2008-10-28/26880.html
    "200520015978.1",
    # Worked example with the weights spelled out: http://dfrtw.com/zhuanlichaxun/31487.html
    "201710601862.3",
    # 8-digit form (before October 2003), weights 2..9.
    # China's first patent, Hu Guohua, 1985: http://cainet.org.cn/english/article.aspx?id=150
    "85100001.0",
    # CNIPA invalidation decision 16929, "申请(专利)号": http://www.hnzlw.com/wuxiao/2011-06-29/31011.html
    "99110929.5",
    # "ZL95115608.X", worked example (sum 186, remainder 10 -> X): http://chengju.com/wenhua/33720.html
    "95115608.X",
    # "ZL88201465.X", example of a 1988 utility model: http://www.lenre.cn/jscx/128.html
    "88201465.X",
]


@pytest.mark.parametrize("number", PUBLISHED_APPLICATION_NUMBERS)
def test_published_application_number_is_valid(number: str) -> None:
    digits, _, check = number.partition(".")
    assert patent_application_check_digit(digits) == check
    assert normalize_patent_application_number(number) == number


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("202010201625.X", "202010201625.X"),
        ("CN202010201625.X", "202010201625.X"),
        ("ZL202010201625.X", "202010201625.X"),
        ("CN 202010201625.X", "202010201625.X"),
        # CNIPA's writing rule allows one blank after the year and after the type digit.
        ("ZL 2020 1 0201625.X", "202010201625.X"),
        (" zl202010201625.x ", "202010201625.X"),
        ("ZL85100001.0", "85100001.0"),
    ],
)
def test_application_number_is_normalized(value: str, canonical: str) -> None:
    assert normalize_patent_application_number(value) == canonical


def test_example_number_of_the_brief_has_a_wrong_check_digit() -> None:
    # '202310123456.7' looks canonical but its check digit is 6.
    assert patent_application_check_digit("202310123456") == "6"
    with pytest.raises(ValueError, match="check digit should be '6', not '7'"):
        normalize_patent_application_number("202310123456.7")


def test_published_illustrative_numbers_with_wrong_check_digits_are_refused() -> None:
    # https://www.tjnenfu.com/sb/139102.html explains "CN201711469835.X" as an application number;
    # its check digit is in fact 1.
    with pytest.raises(ValueError, match="check digit should be '1', not 'X'"):
        normalize_patent_application_number("CN201711469835.X")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2020102016250", "has no '.'"),
        ("20201020162.X", "12 digits before the '.'"),
        ("2020102016255.X", "12 digits before the '.'"),
        ("2020A0201625.X", "12 digits before the '.'"),
        ("202010201625.", "check digit is one of 0-9 or X"),
        ("202010201625.10", "check digit is one of 0-9 or X"),
        ("US202010201625.X", "12 digits before the '.'"),
        ("202010201625.1", "check digit should be 'X', not '1'"),
        ("85100001.1", "check digit should be '0', not '1'"),
    ],
)
def test_malformed_application_number_is_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_patent_application_number(value)


FULLWIDTH_DIGITS = "".join(chr(0xFF10 + int(d)) for d in "202010201625")  # str.isdigit() is True


@pytest.mark.parametrize("digits", ["", "1234567", "1234567890", "1234567890123", FULLWIDTH_DIGITS])
def test_check_digit_needs_eight_or_twelve_ascii_digits(digits: str) -> None:
    with pytest.raises(ValueError, match="expected 12 digits"):
        patent_application_check_digit(digits)


def _assert_every_single_change_detected(digits: str) -> None:
    number = f"{digits}.{patent_application_check_digit(digits)}"
    for position in range(len(number)):
        if number[position] == ".":
            continue
        alphabet = PATENT_CHECK_CHARACTERS if position == len(number) - 1 else "0123456789"
        for replacement in alphabet:
            if replacement != number[position]:
                changed = number[:position] + replacement + number[position + 1 :]
                with pytest.raises(ValueError, match="check digit should be"):
                    normalize_patent_application_number(changed)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_patent_check_digit_detects_every_single_digit_change(digits: str) -> None:
    # 11 is prime and the weights 2..9 are non-zero mod 11, so any one changed digit (of the 12, or
    # the check digit itself) changes the result.
    _assert_every_single_change_detected(digits)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_patent_check_digit_detects_every_single_digit_change_in_the_old_form(digits: str) -> None:
    _assert_every_single_change_detected(digits)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_patent_check_digit_detects_adjacent_swaps(digits: str) -> None:
    # Neighbouring weights differ by 1 or by 7 (9 then 2), never by a multiple of 11.
    check = patent_application_check_digit(digits)
    for position in range(11):
        a, b = digits[position], digits[position + 1]
        if a != b:
            swapped = digits[:position] + b + a + digits[position + 2 :]
            assert patent_application_check_digit(swapped) != check, (digits, swapped)


def test_patent_check_digit_misses_swaps_between_equally_weighted_positions() -> None:
    # Positions 1 and 9 (2 and 10, 3 and 11, 4 and 12) share a weight: swapping them goes unseen.
    digits = "202010201625"
    swapped = digits[8] + digits[1:8] + digits[0] + digits[9:]
    assert swapped != digits
    assert patent_application_check_digit(swapped) == patent_application_check_digit(digits)


# --- IPC symbols ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("G06N 3/08", "G06N 3/08"),
        ("G06N3/08", "G06N 3/08"),
        ("A61K 31/4045", "A61K 31/4045"),
        # Compact symbols as listed under "Classifications" on Google Patents:
        ("G06F16/10", "G06F 16/10"),  # https://patents.google.com/patent/CN111061695B/en
        ("G06K19/067", "G06K 19/067"),  # https://patents.google.com/patent/WO1999021120A8/en
        # CIPO patent 2229838 bibliographic data, field (51):
        # https://brevets-patents.ic.gc.ca/opic-cipo/cpd/eng/patent/2229838/summary.html
        ("H04M 11/08", "H04M 11/08"),
        # DKPTO's description of the symbol (main group 1-4 digits, subgroup 2-6):
        # https://docs.dkpto.dk/display/IPS/IPC+class
        ("A63B49/02", "A63B 49/02"),
        # WIPO IPC guide, paragraph 18, prints symbols with blanks between the parts:
        # http://www.wipo.int/classifications/fulltext/ipc/ipc6en/guide/ent00004.htm
        ("A 01 B 1/02", "A01B 1/02"),
        ("A 01 B 1 / 00", "A01B 1/00"),
        ("g06n 3/08", "G06N 3/08"),
        ("G06N 03/08", "G06N 3/08"),
        ("H01L 1234/123456", "H01L 1234/123456"),
    ],
)
def test_ipc_symbol_is_normalized(value: str, canonical: str) -> None:
    assert normalize_ipc(value) == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("I06N 3/08", "section is one of A-H, not 'I'"),
        ("Y02E 10/50", "section is one of A-H, not 'Y'"),  # a CPC-only section, not IPC
        ("G06N 3/", "subgroup after '/' has 2 to 6 digits"),
        ("G06N 3/8", "subgroup after '/' has 2 to 6 digits"),
        ("G06N 3/1234567", "subgroup after '/' has 2 to 6 digits"),
        ("G06N 3", "no '/'"),
        ("G06N", "no '/'"),
        ("G6N 3/08", "not an IPC symbol"),
        ("G06 3/08", "not an IPC symbol"),
        ("G06N 12345/08", "not an IPC symbol"),
        ("G06N /08", "not an IPC symbol"),
        ("G06N 0/08", "main group cannot be 0"),
        ("", "no '/'"),
    ],
)
def test_malformed_ipc_symbol_is_refused(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_ipc(value)


# --- ISO 3166-1 alpha-2 --------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["CN", "US", "DE", "JP", "HK", "MO", "TW", "GB", "SS", "BQ"])
def test_country_code_is_known(code: str) -> None:
    assert is_country(code)


@pytest.mark.parametrize(
    "code",
    [
        "XX",  # unassigned
        "ZZ",  # CLDR "unknown region"
        "EU",  # grouping, exceptionally reserved
        "UN",
        "EZ",
        "QO",
        "XA",  # CLDR pseudo-locales
        "XB",
        "XK",  # Kosovo: user-assigned, not ISO
        "AC",  # exceptionally reserved (Ascension Island)
        "IC",  # exceptionally reserved (Canary Islands)
        "UK",  # exceptionally reserved; the United Kingdom is GB
        "001",  # CLDR numeric region (World)
        "cn",  # not upper case
        "",
    ],
)
def test_non_country_code_is_refused(code: str) -> None:
    assert not is_country(code)


def test_there_are_249_countries() -> None:
    # ISO 3166-1 lists 249 officially assigned alpha-2 codes (since SS was added in 2011).
    letters = string.ascii_uppercase
    assert sum(is_country(a + b) for a in letters for b in letters) == 249


# --- pydantic schema types -----------------------------------------------------------------------


class Licensor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uscc: Uscc
    application_number: PatentApplicationNumber
    ipc: IpcSymbol
    country: CountryCode


def test_schema_types_normalize() -> None:
    licensor = Licensor(
        uscc=" 91420000757013137p ",
        application_number="ZL 2020 1 0201625.x",
        ipc="g06n3/08",
        country="CN",
    )
    assert licensor.uscc == "91420000757013137P"
    assert licensor.application_number == "202010201625.X"
    assert licensor.ipc == "G06N 3/08"
    assert licensor.country == "CN"


def _licensor(**changes: str) -> dict[str, str]:
    fields = {
        "uscc": "914403001922038216",
        "application_number": "202010201625.X",
        "ipc": "G06N 3/08",
        "country": "CN",
    }
    return fields | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uscc": "91420000757013137X"}, "check character should be 'P', not 'X'"),
        ({"uscc": "914403001922O38216"}, "character 13 of a USCC cannot be 'O'"),
        ({"uscc": "9144030019220382"}, "a USCC has 18 characters, not 16"),
        ({"application_number": "202010201625.1"}, "check digit should be 'X', not '1'"),
        ({"ipc": "I06N 3/08"}, "section is one of A-H, not 'I'"),
        ({"country": "XX"}, "'XX' is not an ISO 3166-1 alpha-2 country code"),
        ({"country": "cn"}, "upper case: 'CN', not 'cn'"),
        ({"country": "CHN"}, "at most 2 characters"),
    ],
)
def test_schema_types_refuse_with_a_message_naming_the_problem(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as refused:
        Licensor.model_validate(_licensor(**changes))
    assert len(refused.value.errors()) == 1
    assert refused.value.errors()[0]["loc"] == (next(iter(changes)),)
