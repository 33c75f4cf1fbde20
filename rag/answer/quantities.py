"""Numbers as quantities, so that "1.2 billion", "12亿" and "1,200,000,000" are the same number.

An answer may restate a figure in other words than its passage ("4200多万" → "42 million"); what
must hold is the value, and for Chinese text also the unit that follows it ("70元" is not
"70万元" and not "70周岁"). Chinese numerals written as characters (六方, 两省) are read only in
passages, where they can vouch for an answer's digits; in the answer they are as often words
(一起, 统一) as numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.textnorm import CJK, CJK_RE, match_key, normalize_chars

MULTIPLIERS = {"万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3, "百": 1e2,
               "trillion": 1e12, "billion": 1e9, "million": 1e6, "thousand": 1e3}
# A number not glued to a word ("COVID-19", "A4", "3-5" count only as their first part); an
# approximation word (多, 余, 近) may sit between the digits and the multiplier or unit.
_QUANTITY = re.compile(
    r"(?<![A-Za-z\d.\-])(\d+(?:\.\d+)?)"
    r"\s*(?:多|余)?\s*(万亿|亿|万|千|百|trillion|billion|million|thousand)?\s*(?:多|余)?"
    rf"(%|[{CJK}])?", re.I)
# Measure words are interchangeable ("7个最佳村社" is "最佳村社7名"); other units are not.
# (次 "times" is not one: "每周2次" is not "2辆".)
CLASSIFIERS = frozenset("个名位家户人口项件场座条支所处批种类间台辆只头")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
# A Chinese numeral with the unit character after it ("六方", "两万元", "三十五名").
_CN_QUANTITY = re.compile(r"(?<![零〇一二两三四五六七八九十百千万亿])"
                          rf"([零〇一二两三四五六七八九十百千万亿]+)(%|[{CJK}])")
_THOUSANDS = re.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
_ORDINAL = re.compile(r"第[一二三四五六七八九十百零〇两]+[次届期条批]")


@dataclass(frozen=True)
class Quantity:
    """A number found in text: its value, the unit character after it ("" for none, "#" for any
    measure word) and the text."""

    value: float
    unit: str
    text: str


def _unit(char: str) -> str:
    return "#" if char and char in CLASSIFIERS else char


def chinese_numeral(text: str) -> float | None:
    """The value of a Chinese numeral ("三十五" → 35, "两万" → 20000, "一百零八" → 108)."""
    total, section, digit = 0.0, 0.0, None
    for char in text:
        if char in _CN_DIGITS:
            digit = _CN_DIGITS[char]
        elif char in _CN_UNITS:
            section += (1 if digit is None else digit) * _CN_UNITS[char]
            digit = None
        elif char in ("万", "亿"):
            size = MULTIPLIERS[char]
            if section + (digit or 0) == 0 and total == 0:
                return None
            total = (total + section + (digit or 0)) * size if size > 1e4 else total + (section + (digit or 0)) * size
            section, digit = 0.0, None
    value = total + section + (digit or 0)
    return value if value or "零" in text or "〇" in text else None


def quantities(text: str, numerals: bool = False) -> list[Quantity]:
    """Every number of the text, with multipliers applied ("4200多万" → 42,000,000).

    Args:
        numerals: also read Chinese numerals followed by a unit ("六方" → 6 方).
    """
    text = _THOUSANDS.sub("", normalize_chars(text))
    out = []
    for m in _QUANTITY.finditer(text):
        digits, multiplier, unit = m.group(1), m.group(2), m.group(3) or ""
        value = float(digits) * MULTIPLIERS.get((multiplier or "").lower(), 1.0)
        out.append(Quantity(value, _unit(unit), m.group(0).strip()))
    if numerals:
        for m in _CN_QUANTITY.finditer(text):
            value = chinese_numeral(m.group(1))
            if value is not None:
                out.append(Quantity(value, _unit(m.group(2)), m.group(0)))
    return out


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)


def supported(quantity: Quantity, candidates: list[Quantity], strict_unit: bool) -> bool:
    """Whether a candidate has the same value (and, if strict and both have one, the same unit)."""
    return any(_same(quantity.value, c.value) and
               (not strict_unit or not quantity.unit or not c.unit or quantity.unit == c.unit)
               for c in candidates)


def missing(text: str, sources: list[str], strict_unit: bool | None = None) -> list[str]:
    """The numbers of `text` that none of `sources` states (by value, see module docstring).

    Args:
        text: an answer sentence or a question.
        sources: passage texts.
        strict_unit: compare the unit after the number too; default: when `text` is Chinese.
    """
    if strict_unit is None:
        strict_unit = bool(CJK_RE.search(text))
    found = [q for source in sources for q in quantities(source, numerals=True)]
    return [q.text for q in quantities(text) if not supported(q, found, strict_unit)]


def missing_specifics(question: str, sources: list[str]) -> list[str]:
    """The question's numbers (by value) and ordinals (verbatim) that no source states."""
    joined = match_key("".join(sources))
    absent = missing(question, sources, strict_unit=False)
    return absent + [o for o in _ORDINAL.findall(match_key(question)) if o not in joined]


_ASKS_QUANTITY = re.compile(
    r"多少|(?<!哪)几[个名位次项家户人年亩天月场所座批条届万千百十]?|比例|百分之|哪一?年|"
    r"\bhow (?:many|much|large|big|long|high|old)\b|\bwhat (?:percentage|proportion|share|level)\b|"
    r"\b(?:which|what) year\b", re.I)
_NUMBER_WORDS = re.compile(
    r"\d|[一二三四五六七八九十百千万亿两半]|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|"
    r"eleven|twelve|twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozen|half)\b", re.I)


def asks_for_quantity(question: str) -> bool:
    """Whether the question asks for a number ("多少", "几次", "how many", "which year")."""
    return bool(_ASKS_QUANTITY.search(question))


def has_quantity(text: str) -> bool:
    """Whether the text gives a number, in digits, Chinese numerals or English number words."""
    return bool(_NUMBER_WORDS.search(text))


_ENGLISH_AMOUNT = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(trillion|billion|million|thousand)\b", re.I)


def english_amount(value: float) -> str:
    """A value as English writes it: 42000000 → "42 million", 445700 → "445,700"."""
    for word, size in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if value >= size:
            return f"{value / size:.4g} {word}"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}".rstrip("0").rstrip(".")


def fix_english_amounts(sentence: str, sources: list[str]) -> list[tuple[str, str]]:
    """Amounts an English sentence got wrong by misreading 万/亿, with their correction.

    "300 million yuan" for a passage's "300万元" (3 million) is the typical slip: the digits are
    the passage's, the multiplier is not. Only an amount whose digits match exactly one passage
    amount of another value is corrected.

    Returns:
        (wrong text, corrected text) pairs, in order.
    """
    found = [q for source in sources for q in quantities(source)]
    fixes = []
    for m in _ENGLISH_AMOUNT.finditer(sentence):
        digits = m.group(1).replace(",", "")
        value = float(digits) * MULTIPLIERS[m.group(2).lower()]
        if any(_same(value, q.value) for q in found):
            continue
        same_digits = {q.value for q in found if re.match(re.escape(digits) + r"(?!\d)", q.text)}
        if len(same_digits) == 1:
            fixes.append((m.group(0), english_amount(same_digits.pop())))
    return fixes
