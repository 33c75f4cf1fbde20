"""Numbers as quantities, so that "1.2 billion", "12亿" and "1,200,000,000" are the same number.

An answer may restate a figure in other words than its passage ("4200多万" → "42 million"); what
must hold is the value, and for Chinese text also the unit that follows it ("70元" is not
"70万元" and not "70周岁"). Chinese numerals written as characters (六方, 两省) are read only in
passages, where they can vouch for an answer's digits; in the answer they are as often words
(一起, 统一) as numbers. Their values come from cn2an ("二〇二三" → 2023, "两千三百万"), with what
it does not read done here: decimals before a multiplier ("三点五亿"), percentages ("百分之四十",
"三成"), fractions ("三分之一") and ordinals ("第三", kept apart from amounts).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import cn2an

from rag.textnorm import CJK, CJK_RE, match_key, normalize_chars, passage_key

MULTIPLIERS = {"万亿": 1e12, "千亿": 1e11, "百亿": 1e10, "十亿": 1e9, "亿": 1e8, "千万": 1e7, "百万": 1e6,
               "十万": 1e5, "万": 1e4, "千": 1e3, "百": 1e2,
               "trillion": 1e12, "billion": 1e9, "million": 1e6, "thousand": 1e3}
# 成 is tenths ("三成" is 30%) except where it starts a word ("3成员" is not 30%).
_TENTHS = r"成(?![立员为功本果交熟绩就长效不])"
# A number not glued to a word ("COVID-19", "A4", "3-5" count only as their first part); an
# approximation word (多, 余) may sit between the digits and the multiplier or unit. The ":00" of a
# time of day ("9:00 AM", printed "上午9时") is no number of its own.
_QUANTITY = re.compile(
    r"(?<![A-Za-z\d.\-])(?!(?<=\d:)00(?!\d))(\d+(?:\.\d+)?)"
    r"\s*(?:多|余)?\s*(万亿|千亿|百亿|十亿|亿|千万|百万|十万|万|千|百|trillion|billion|million|thousand)?\s*(?:多|余)?"
    rf"({_TENTHS}|%|％|[{CJK}])?", re.I)
# Measure words are interchangeable ("7个最佳村社" is "最佳村社7名"); other units are not.
# (次 "times" is not one: "每周2次" is not "2辆".)
CLASSIFIERS = frozenset("个名位家户人口项件场座条支所处批种类间台辆只头")
_CN = "零〇一二两三四五六七八九十百千万亿"
_CN_NUMBER = rf"[{_CN}]+(?:点[零〇一二三四五六七八九]+(?:万亿|亿|万)?)?"
# Chinese numerals: a fraction ("三分之一", "百分之四十"), or a numeral with the unit character after
# it ("六方", "两万元", "三十五名", "三点五亿元", "三成"), or an ordinal ("第三").
_CN_QUANTITY = re.compile(
    rf"(?<![{_CN}点])(?:(?P<whole>[{_CN}]+)分之(?P<part>{_CN_NUMBER})"
    rf"|(?P<nth>第)(?P<ordinal>{_CN_NUMBER})"
    rf"|(?P<value>{_CN_NUMBER})(?:多|余)?(?!分之|分点)(?P<unit>{_TENTHS}|%|％|(?![{_CN}])[{CJK}]))")
_HALF = re.compile(r"一半|半数|过半")  # 50%
_THOUSANDS = re.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
_ORDINAL = re.compile(r"第[一二三四五六七八九十百零〇两]+[次届期条批]")
_ENGLISH_NUMBERS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}
_ENGLISH_NUMBERS.update({w: 10.0 * i for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(),
                                                           start=3)})
_ENGLISH_NUMBERS.update({"hundred": 100.0, "thousand": 1e3, "million": 1e6, "billion": 1e9, "dozen": 12.0})
_ENGLISH_NUMBER = re.compile(rf"\b({'|'.join(_ENGLISH_NUMBERS)})\b", re.I)
# What follows a number and tells what it counts ("万元", "平方米", "households"): kept for
# `rag.answer.asked`, which reads the kind of quantity from it.
_AFTER = 20


@dataclass(frozen=True)
class Quantity:
    """A number found in text: its value, the unit character after it ("" for none, "#" for any
    measure word, "%" for a percentage), the text, the text after it and whether it is an ordinal
    ("第三", "3rd")."""

    value: float
    unit: str
    text: str
    after: str = ""
    ordinal: bool = False


def _unit(char: str) -> str:
    if char in ("%", "％"):
        return "%"
    return "#" if char and char in CLASSIFIERS else char


def _tenths(text: str, m: re.Match, group) -> bool:
    """Whether the unit the match ends with is 成 as tenths ("三成"), not a word ("3成员")."""
    return m.group(group) == "成" and bool(re.match(_TENTHS, text[m.start(group):]))


@lru_cache(maxsize=4096)  # the same numerals recur in every passage checked
def chinese_numeral(text: str) -> float | None:
    """The value of a Chinese numeral ("三十五" → 35, "两万" → 20000, "二〇二三" → 2023,
    "三点五亿" → 350000000); None for what is no single number ("七八", "万")."""
    multiplier = 1.0
    if "点" in text:
        for word in ("万亿", "亿", "万"):
            if text.endswith(word):
                text, multiplier = text[: -len(word)], MULTIPLIERS[word]
                break
    if len(text) == 1 and text in "十百千":  # "百名干部", "千企": cn2an wants a digit before them
        return MULTIPLIERS.get(text, 10.0)
    # Two digits side by side are an estimate ("七八个人", "两三天"), not a positional number.
    if len(text) == 2 and all(c in "一二两三四五六七八九" for c in text):
        return None
    try:
        return float(cn2an.cn2an(text, "normal")) * multiplier
    except (ValueError, KeyError, IndexError, TypeError):  # not one number ("三四十", "十几")
        return None


def quantities(text: str, numerals: bool = False, words: bool = False) -> list[Quantity]:
    """Every number of the text, with multipliers applied ("4200多万" → 42,000,000).

    Args:
        numerals: also read Chinese numerals followed by a unit ("六方" → 6 方), percentages
            ("百分之四十" → 40 %, "一半" → 50 %), fractions and ordinals ("第三").
        words: also read English number words ("five", "a dozen").
    """
    text = _THOUSANDS.sub("", normalize_chars(text))
    out = []
    for m in _QUANTITY.finditer(text):
        digits, multiplier, unit = m.group(1), m.group(2), m.group(3) or ""
        value = float(digits) * MULTIPLIERS.get((multiplier or "").lower(), 1.0)
        before, after = text[max(0, m.start() - 3):m.start()], _following(text, m, unit)
        if _tenths(text, m, 3):
            value, unit = value * 10, "%"
        elif before.endswith("百分之"):
            unit = "%"
        ordinal = before.endswith("第") or bool(re.match(r"(?:st|nd|rd|th)\b", text[m.end(1):]))
        out.append(Quantity(value, _unit(unit), m.group(0).strip(), after, ordinal))
    if numerals:
        out += _numerals(text)
        out += [Quantity(50.0, "%", m.group(0), text[m.end():m.end() + _AFTER]) for m in _HALF.finditer(text)]
    if words:
        for m in _ENGLISH_NUMBER.finditer(text):
            if text[:m.start()].rstrip()[-1:].isdigit():  # "42 million" is one number, read above
                continue
            out.append(Quantity(_ENGLISH_NUMBERS[m.group(1).lower()], "", m.group(0), text[m.end():m.end() + _AFTER]))
    return out


def _following(text: str, m: re.Match, unit: str) -> str:
    """The text after a number: from its unit on ("万元…", "households…")."""
    start = m.end() - len(unit) if unit else m.end()
    return text[start:start + _AFTER]


def _numerals(text: str) -> list[Quantity]:
    """The Chinese numerals of a text (see `quantities`)."""
    out = []
    for m in _CN_QUANTITY.finditer(text):
        if m.group("whole"):
            whole, part = chinese_numeral(m.group("whole")), chinese_numeral(m.group("part"))
            if whole and part is not None:
                out.append(Quantity(100 * part / whole, "%", m.group(0), text[m.end():m.end() + _AFTER]))
        elif m.group("nth"):
            value = chinese_numeral(m.group("ordinal"))
            if value is not None:
                # The measure word after it stays its unit ("第三届" 届), as for any numeral.
                unit = text[m.end():m.end() + 1]
                unit = unit if CJK_RE.match(unit) and unit not in _CN else ""
                out.append(Quantity(value, _unit(unit), m.group(0), text[m.end():m.end() + _AFTER], ordinal=True))
        else:
            value, unit = chinese_numeral(m.group("value")), m.group("unit")
            if value is not None:
                after = _following(text, m, unit)
                if _tenths(text, m, "unit"):
                    value, unit = value * 10, "%"
                out.append(Quantity(value, _unit(unit), m.group(0), after))
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
    joined = passage_key("".join(sources))
    absent = missing(question, sources, strict_unit=False)
    return absent + [o for o in _ORDINAL.findall(match_key(question)) if o not in joined]


_ENGLISH_AMOUNT = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(trillion|billion|million|thousand)\b", re.I)
# A large amount written out in digits ("4,000,000"), the other way 千万 gets misread.
_ENGLISH_DIGITS = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3}){2,}|\d{7,})(?![\d,]|\.\d|\s*(?:trillion|billion|million|thousand)\b)", re.I)


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
    # "4,000,000 yuan" for "4千万元" (40 million): off by a power of ten from exactly one amount.
    for m in _ENGLISH_DIGITS.finditer(sentence):
        value = float(m.group(1).replace(",", ""))
        if any(_same(value, q.value) for q in found):
            continue
        tens = {q.value for q in found if q.value >= 1e4 and _power_of_ten(q.value / value)}
        if len(tens) == 1:
            fixes.append((m.group(0), english_amount(tens.pop())))
    return fixes


def _power_of_ten(ratio: float) -> bool:
    """Whether a ratio is 10, 100, … or 1/10, 1/100, … (not 1)."""
    exponent = math.log10(ratio) if ratio > 0 else 0.5
    return abs(exponent - round(exponent)) < 1e-9 and round(exponent) != 0
