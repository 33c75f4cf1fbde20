"""Numbers as quantities, so that "1.2 billion", "12亿" and "1,200,000,000" are the same number.

An answer may restate a figure in other words than its passage ("4200多万" → "42 million"); what
must hold is the value, and for Chinese text also the unit that follows it ("70元" is not
"70万元" and not "70周岁"). Chinese numerals written as characters (一次, 两省) are not read:
they are as often words as numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.textnorm import match_key, normalize_chars

MULTIPLIERS = {"万亿": 1e12, "亿": 1e8, "万": 1e4, "千": 1e3, "百": 1e2,
               "trillion": 1e12, "billion": 1e9, "million": 1e6, "thousand": 1e3}
# A number not glued to a word ("COVID-19", "A4", "3-5" count only as their first part); an
# approximation word (多, 余, 近) may sit between the digits and the multiplier or unit.
_QUANTITY = re.compile(
    r"(?<![A-Za-z\d.\-])(\d+(?:\.\d+)?)"
    r"\s*(?:多|余)?\s*(万亿|亿|万|千|百|trillion|billion|million|thousand)?\s*(?:多|余)?"
    r"(%|[\u4e00-\u9fff])?", re.I)
_THOUSANDS = re.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
_ORDINAL = re.compile(r"第[一二三四五六七八九十百零〇两]+[次届期条批]")


@dataclass(frozen=True)
class Quantity:
    """A number found in text: its value, the unit character after it (Chinese) and the text."""

    value: float
    unit: str
    text: str


def quantities(text: str) -> list[Quantity]:
    """Every number of the text, with multipliers applied ("4200多万" → 42,000,000)."""
    out = []
    for m in _QUANTITY.finditer(_THOUSANDS.sub("", normalize_chars(text))):
        digits, multiplier, unit = m.group(1), m.group(2), m.group(3) or ""
        value = float(digits) * MULTIPLIERS.get((multiplier or "").lower(), 1.0)
        out.append(Quantity(value, unit if unit != "%" else "%", m.group(0).strip()))
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
        strict_unit = bool(re.search(r"[\u4e00-\u9fff]", text))
    found = [q for source in sources for q in quantities(source)]
    return [q.text for q in quantities(text) if not supported(q, found, strict_unit)]


def specifics(question: str) -> list[str]:
    """Details of a question that the documents must state for it to be answerable: its numbers
    ("2023年", "4月") and ordinals ("第十六次")."""
    return [q.text for q in quantities(question)] + _ORDINAL.findall(match_key(question))


def missing_specifics(question: str, sources: list[str]) -> list[str]:
    """The question's numbers (by value) and ordinals (verbatim) that no source states."""
    joined = match_key("".join(sources))
    absent = missing(question, sources, strict_unit=False)
    return absent + [o for o in _ORDINAL.findall(match_key(question)) if o not in joined]
