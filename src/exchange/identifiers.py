"""Identifiers a technology exchange handles: unified social credit codes (统一社会信用代码),
CN patent application numbers (专利申请号), IPC symbols, ISO 3166-1 country codes. Pure, no I/O.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from babel import Locale
from pydantic import AfterValidator, BeforeValidator, Field

# GB 32100-2015 table 1: the code characters in the order of their values 0..30 (no I, O, S, V, Z).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_LENGTH = 18
_USCC_VALUE = {character: value for value, character in enumerate(USCC_ALPHABET)}
_USCC_MODULUS = len(USCC_ALPHABET)  # 31, a prime: every single substitution changes the sum
# GB 32100-2015 table 2: W_i = 3^(i-1) mod 31 for positions i = 1..17.
_USCC_WEIGHTS = tuple(pow(3, i, _USCC_MODULUS) for i in range(USCC_LENGTH - 1))

# CNIPA application numbers: 12 digits since 1 October 2003 (YYYY, type, 7-digit serial), 8 before
# (YY, type, 5-digit serial). Weights 2..9 then 2..5 again, sum mod 11, remainder 10 written 'X'.
_PATENT_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_PATENT_DIGITS = re.compile(r"[0-9]{12}|[0-9]{8}")
_PATENT_PREFIXES = ("CN", "ZL")  # country code, or 专利 (granted patent number)

# Section, class, subclass, main group, subgroup: 'G06N 3/08'. WIPO prints 'A 01 B 1/02', so blanks
# between the parts are tolerated; the canonical form has one blank, before the main group.
_IPC_SYMBOL = re.compile(
    r"(?P<section>[A-Z])\s*(?P<class_>[0-9]{2})\s*(?P<subclass>[A-Z])"
    r"\s*(?P<main_group>[0-9]{1,4})\s*/\s*(?P<subgroup>[0-9]{2,6})"
)
_IPC_SECTIONS = "ABCDEFGH"

# CLDR territories that are not officially assigned ISO 3166-1 alpha-2 codes: groupings (EU, EZ, UN,
# QO), unknown (ZZ), pseudo-locales (XA, XB), Kosovo's user-assigned XK, and the codes ISO 3166/MA
# only exceptionally reserves (AC, CP, CQ, DG, EA, IC, TA).
_NOT_COUNTRIES = frozenset(
    {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB", "XK", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}
)


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character (18th) for the first 17 characters of a USCC."""
    if len(first17) != USCC_LENGTH - 1:
        raise ValueError(f"expected the first 17 characters of a USCC, got {len(first17)}")
    total = 0
    for position, (character, weight) in enumerate(zip(first17, _USCC_WEIGHTS, strict=True), 1):
        if character not in _USCC_VALUE:
            raise ValueError(_uscc_bad_character(position, character))
        total += _USCC_VALUE[character] * weight
    return USCC_ALPHABET[(_USCC_MODULUS - total % _USCC_MODULUS) % _USCC_MODULUS]


def _uscc_bad_character(position: int, character: str) -> str:
    return (
        f"character {position} of a USCC cannot be '{character}' "
        "(only 0-9 and upper-case A-Z without I, O, S, V, Z)"
    )


def _uscc_problem(code: str) -> str | None:
    if len(code) != USCC_LENGTH:
        return f"a USCC has 18 characters, not {len(code)}"
    for position, character in enumerate(code, 1):
        if character not in _USCC_VALUE:
            return _uscc_bad_character(position, character)
    expected = uscc_check_character(code[:-1])
    if code[-1] != expected:
        return f"check character should be '{expected}', not '{code[-1]}'"
    return None


def is_valid_uscc(code: str) -> bool:
    """18 characters from the GB 32100-2015 set, upper case, with the right check character.

    Strict: no stripping or case folding here (the `Uscc` schema type does that first).
    """
    return _uscc_problem(code) is None


def patent_application_check_digit(digits: str) -> str:
    """Check digit ('0'-'9' or 'X') of a CN application number: 12 digits, or 8 before 2003-10."""
    if not _PATENT_DIGITS.fullmatch(digits):
        raise ValueError(f"expected 12 digits (or 8 before October 2003), got '{digits}'")
    weights = _PATENT_WEIGHTS[: len(digits)]
    remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


def normalize_patent_application_number(value: str) -> str:
    """'CN 2020 1 0201625.x', 'ZL202010201625.X' -> '202010201625.X', the check digit verified."""
    compact = "".join(value.split()).upper()
    for prefix in _PATENT_PREFIXES:
        if compact.startswith(prefix):
            compact = compact[len(prefix) :]
            break
    digits, dot, check = compact.partition(".")
    if not dot:
        raise ValueError(
            f"'{value}' has no '.' and check digit after the application number "
            "(expected e.g. '202010201625.X')"
        )
    if not _PATENT_DIGITS.fullmatch(digits):
        raise ValueError(
            f"'{value}': a CN application number has 12 digits before the '.' "
            f"(8 before October 2003), not '{digits}'"
        )
    if len(check) != 1 or check not in "0123456789X":
        raise ValueError(f"'{value}': the check digit is one of 0-9 or X, not '{check}'")
    expected = patent_application_check_digit(digits)
    if check != expected:
        raise ValueError(f"'{value}': check digit should be '{expected}', not '{check}'")
    return f"{digits}.{check}"


def normalize_ipc(value: str) -> str:
    """'G06N3/08', 'g06n 3/08', 'A 01 B 1/02' -> 'G06N 3/08', 'A01B 1/02'."""
    match = _IPC_SYMBOL.fullmatch(value.strip().upper())
    if match is None:
        raise ValueError(_ipc_shape_problem(value))
    section = match["section"]
    if section not in _IPC_SECTIONS:
        raise ValueError(f"'{value}': the IPC section is one of A-H, not '{section}'")
    main_group = int(match["main_group"])
    if main_group == 0:
        raise ValueError(f"'{value}': the IPC main group cannot be 0")
    subclass = f"{section}{match['class_']}{match['subclass']}"
    return f"{subclass} {main_group}/{match['subgroup']}"


def _ipc_shape_problem(value: str) -> str:
    _, slash, subgroup = value.partition("/")
    if not slash:
        return f"'{value}' has no '/' between the IPC main group and subgroup (e.g. 'G06N 3/08')"
    subgroup = subgroup.strip()
    if not re.fullmatch(r"[0-9]{2,6}", subgroup):
        return f"'{value}': the IPC subgroup after '/' has 2 to 6 digits, not '{subgroup}'"
    return (
        f"'{value}' is not an IPC symbol: expected a section letter A-H, a 2-digit class, a "
        "subclass letter, a main group of 1 to 4 digits, '/', a subgroup of 2 to 6 digits "
        "(e.g. 'G06N 3/08')"
    )


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    codes = (code for code in Locale("en").territories if isinstance(code, str))
    return frozenset(
        code
        for code in codes
        if len(code) == 2 and code.isascii() and code.isalpha() and code not in _NOT_COUNTRIES
    )


def is_country(code: str) -> bool:
    """An officially assigned ISO 3166-1 alpha-2 code, upper case (CLDR's list, via babel)."""
    return code in _countries()


def _strip_upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _check_uscc(code: str) -> str:
    problem = _uscc_problem(code)
    if problem is not None:
        raise ValueError(problem)
    return code


def _check_country(code: str) -> str:
    if not is_country(code):
        if code.isascii() and code.isalpha() and not code.isupper():
            raise ValueError(
                f"a country code is written in upper case: '{code.upper()}', not '{code}'"
            )
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    return code


Uscc = Annotated[
    str,
    BeforeValidator(_strip_upper),
    AfterValidator(_check_uscc),
    Field(examples=["914403001922038216"]),
]
PatentApplicationNumber = Annotated[
    str,
    AfterValidator(normalize_patent_application_number),
    Field(examples=["202010201625.X"]),
]
IpcSymbol = Annotated[str, AfterValidator(normalize_ipc), Field(examples=["G06N 3/08"])]
CountryCode = Annotated[
    str,
    Field(min_length=2, max_length=2, examples=["CN"]),
    AfterValidator(_check_country),
]
