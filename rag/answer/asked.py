"""The asked quantity: what kind of number a question wants, and whether an answer gives one.

"花了多少钱" wants money, "多少户" households, "哪一年" a year; an answer whose figures are all of
another kind (days for money, 人 for 户) answers another question, however well a passage vouches
for its numbers. Kinds are read from the measure word after 多少/几 ("多少户", "几个月"), else from
the noun asked about ("多少资金", "面积有多大", "what percentage", "how many households"); a
question whose kind is not clear asks for "a number" and is held only to giving one.

Decisions, all on the side of answering (a false refusal costs as much as a wrong answer):
- a figure whose kind is not known ("6方", "300万" without a unit, "48 alliances") fits any kind in
  English, where units are words the lists do not know; in Chinese only money (amounts often drop
  元: "销售额超12亿") or a count, since a head count, households, an area, a span or a share is
  written with its measure word ("3200余名", "1000多户"): "帮助多少户" is not answered by "12亿";
- near kinds fit each other: a date for a year, a generic count (个, 家) for people or households,
  a count of things (项, 台, 种…) for neither (people and households do not fit each other either:
  "70多名农户" is not "多少户"), a percentage for a comparison
  ("比市场价高出多少");
- numbers the question itself names ("2020年…提高到了多少") are no answer to it;
- before generation a question is refused only when it names a definite kind and no retrieved
  passage has a figure that could be of it (`passages_lack`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer.quantities import Quantity, quantities, supported
from rag.script import search_form
from rag.textnorm import CJK_RE

KINDS = ("money", "people", "households", "area", "count", "things", "time", "percent", "ordinal", "date", "year",
         "length", "weight")
# Units, as the text after a number starts ("万元" is read as 元 after the multiplier), longest first.
_ZH_UNITS = [
    # "4个多小时", "两个半月": the 多/半 between 个 and the unit leaves the kind the unit's, not a count.
    *((f"个{more}{unit}", kind) for unit, kind in (("百分点", "percent"), ("小时", "time"), ("月", "time"),
                                                   ("星期", "time"), ("工作日", "time")) for more in ("多", "半", "")),
    ("平方公里", "area"), ("平方千米", "area"), ("平方米", "area"), ("平米", "area"), ("平方", "area"),
    ("公顷", "area"), ("亩", "area"), ("㎡", "area"),
    ("美元", "money"), ("港元", "money"), ("欧元", "money"), ("块钱", "money"), ("元", "money"),
    ("人次", "people"), ("人", "people"), ("名", "people"), ("位", "people"),
    ("户", "households"),
    ("公里", "length"), ("千米", "length"), ("厘米", "length"), ("米", "length"),
    ("公斤", "weight"), ("千克", "weight"), ("吨", "weight"), ("斤", "weight"),
    ("小时", "time"), ("分钟", "time"), ("天", "time"), ("周年", "time"), ("星期", "time"),
    ("%", "percent"), ("倍", "percent"), ("番", "percent"),  # a ratio answers "增长率是多少" too
] + [(c, "count") for c in "个家"] + [(c, "things") for c in "件只头台座项场所处批种类间辆条支期次届幢栋例份套本册部篇张单笔"]
_EN_UNITS = [
    (r"yuan|rmb|cny|dollars?|usd|\$", "money"),
    (r"households?|families|family|homes", "households"),
    (r"people|persons?|residents?|villagers?|individuals?|members?|volunteers?|workers?|farmers?|employees?"
     r"|staff|cadres?|students?|visitors?|tourists?|participants?|person-times|job[- ]?seekers?|officials?"
     r"|entrepreneurs?|representatives?|trainees?|children|elderly|doctors?|experts?", "people"),
    (r"mu|hectares?|acres?|square (?:metres?|meters?|kilometres?|kilometers?)|sq\.? ?m|km2|km²|m2|m²", "area"),
    (r"percent|per cent|percentage points?|%", "percent"),
    (r"days?|weeks?|months?|years?|hours?|minutes?", "time"),
    (r"tons?|tonnes?|kilograms?|kg|jin", "weight"),
    (r"metres?|meters?|kilometres?|kilometers?|km", "length"),
    (r"times", "count"),
]
_EN_UNIT = [(re.compile(rf"\s*(?:{pattern})\b", re.I), kind) for pattern, kind in _EN_UNITS]
# Kinds that also fit where another is asked for (see the module docstring).
# A generic count (个, 家: "3个村", "50家农户") may be of people or households; a measure word for
# things (项, 台, 件…) never is: "5项" does not answer "多少名党员".
_FITS = {"year": {"date"}, "date": {"year"}, "time": {"year", "date"}, "count": {"people", "households", "things"},
         "things": {"count"}, "people": {"count"}, "households": {"count"}, "ordinal": {"count"}}
# Kinds that are just what another asks for: a count of things ("8000册") is what "how many" /
# "多少个" asks (where near kinds only may be of it).
_EXACT = {"count": {"things"}}
# What a Chinese figure without a known measure word can be (see the module docstring).
_UNITLESS_ZH = frozenset({"money", "count", "things", "ordinal"})
# Single-character numerals that are words in an answer ("统一", "十分", "百姓") unless a unit follows.
_WORDLIKE = frozenset("一十百千万")
_NUMERAL_CHARS = frozenset("〇零一二两三四五六七八九十百千万亿")


def kind_of(quantity: Quantity) -> str | None:
    """The kind of quantity a number is ("70万元" → money, "3659户" → households), None if not known."""
    if quantity.ordinal:
        return "ordinal"
    if quantity.unit == "%":
        return "percent"
    after = quantity.after
    for unit, kind in _ZH_UNITS:
        if after.startswith(unit):
            return kind
    if after.startswith("年"):  # "2021年", "1896年" are years (archives reach back), "3年" a span
        return "year" if quantity.value == int(quantity.value) and 1000 <= quantity.value <= 2100 else "time"
    if after[:1] and after[:1] in "月日号":  # "6月" is a month, "3日" a day of it: parts of dates
        return "date"
    for pattern, kind in _EN_UNIT:
        if pattern.match(after):
            return kind
    return None


def _lone_numeral(quantity: Quantity) -> bool:
    """A single Chinese numeral character, with what follows it ("四川" → 四)."""
    return quantity.text[:1] in _NUMERAL_CHARS and len(quantity.text.rstrip(quantity.after[:1])) <= 1


def figures(text: str) -> list[Quantity]:
    """The numbers an answer gives: digits, Chinese numerals that are numbers here (not the 一 of
    统一), English number words."""
    return [q for q in quantities(text, numerals=True, words=True)
            if not (q.text[:1] in _WORDLIKE and _lone_numeral(q) and kind_of(q) is None)]


@dataclass(frozen=True)
class Asked:
    """What a question asks for: the kinds of quantity that answer it (empty: any number) and the
    words that said so."""

    kinds: frozenset[str]
    cue: str

    def fits(self, kind: str | None, chinese: bool = False) -> bool:
        """Whether a figure of this kind can answer (an unknown kind can, in Chinese only an amount
        or a count: see the module docstring)."""
        if kind is None:
            return not chinese or not self.kinds or bool(self.kinds & _UNITLESS_ZH)
        return not self.kinds or kind in self.kinds or any(kind in _FITS.get(k, ()) for k in self.kinds)


# 几 as a question word: not 哪几 (which), 这几 (these), 几乎 (almost), 几十 (dozens).
_JI = r"(?<![哪这那好])几(?![乎何经度近十百千万])"
# A question for a number at all: 多少, 几, 多大/多高 (not 多大作用), how many…, which year.
_ASKS = re.compile(
    rf"多少|{_JI}|比例|百分之几|占比|比重|哪一?年|第几|"
    r"多[大高长远久重](?!程度|作用|影响|变化|意义|帮助|贡献|关系|区别|差别|的|力|事)|"
    r"\bhow (?:many|much|large|big|long|high|old|fast|far)\b|\bby how much\b|"
    r"\bwhat (?:percentage|proportion|share|level|percent)\b|\b(?:which|what) year\b", re.I)
# After 多少/几: the measure word or unit, past a multiplier ("多少万元") and 个 ("几个月" keeps it).
_ASKED_UNIT = re.compile(rf"(?:多少|{_JI})(?:万|千|百|亿)?(?P<rest>[^\s，,。？?！!；;、]{{0,6}})")
# The noun right after 多少 ("多少农户的…", "多少资金"), up to a verb or particle.
_NOUN_AFTER = re.compile(r"[^的是有了呢吗提高增加到从在为达被让给和与及]+")
_ZH_NOUNS = [
    # A share before money: "年收益，有多大比例" asks for the share.
    (r"比例|百分之几|百分比|占比|比重|几成|(?<=[\u4e00-\u9fff])率(?![先领队])", "percent"),
    (r"钱|资金|投资|投入(?!使用|运营|运行)|收入|营收|营业额|销售额|交易额|成交额|产值|利润|收益|创收|授信|贷款|经费|补助|补贴|奖金|"
     r"价格|价钱|费用|成本|工资|薪|GDP|总额|金额|预算|融资|分红|捐款|税|损失", "money"),
    (r"面积|占地|用地规模", "area"),
    (r"农户|村户|住户", "households"),  # counted in 户 or as people ("70多名农户"): both fit
    (r"海拔|多高|高度|多长的|长度|多远|距离", "length"),
    (r"多久|多长时间|几天|几个月|几年|多少天|多少年|多少个月|多少小时", "time"),
    (r"人口|党员|干部|群众|村民|居民|人才|学员|志愿者|代表|员工|职工|工人|农民|游客|人员|学生|老人|儿童|企业家|"
     r"专家|医生|求职者|劳动力", "people"),
]
_ZH_NOUN = [(re.compile(p, re.I), kind) for p, kind in _ZH_NOUNS]
# "高出多少", "提高到了多少": a change may be given as a percentage too.
_COMPARES = re.compile(r"高出|提高|增长|增加|多出|降低|下降|减少|上涨|提升|翻了|增收|by how much|grow|rise|increase",
                       re.I)
# "这几个联盟是什么时候成立的": beside a when-word, 几个 names the things; the question wants a
# time, which may come without a figure ("去年"), so no figure is held to a kind.
_WHEN = re.compile(r"什么时候|啥时候|何时|什么时间")
_EN_ASKS = [
    (r"\b(?:which|what) year\b|\bin what year\b", "year"),
    (r"\bwhat (?:date|day)\b|\bon which day\b", "date"),
    (r"\bwhat (?:percentage|proportion|share|percent)\b|\bhow fast\b|\bgrowth rate\b", "percent"),
    (r"\bhow much (?:money|funding|investment|income|revenue|credit|capital)\b|"
     r"\bhow much (?:\w+ ){0,5}(?:invest|invested|spend|spent|cost|earn|earned|raise|raised|pay|paid|"
     r"fund|funded|worth|make)\b|\bhow much (?:was|were|is|did) (?:\w+ ){0,6}(?:invested|spent|earned|raised|"
     r"paid|funded)\b", "money"),
    (r"\bhow many (?:\w+[- ]){0,3}?(?:households|families|homes)\b", "households"),
    (r"\bhow many (?:[\w']+[- ]){0,3}?(?:people|persons|residents|villagers|individuals|members|volunteers|workers|"
     r"farmers|employees|staff|cadres|students|visitors|tourists|participants|job[- ]?seekers|officials|"
     r"entrepreneurs|representatives|trainees|children|doctors|experts)\b", "people"),
    (r"\bhow many (?:mu|hectares|acres|square)\b|\bhow much (?:land|area)\b", "area"),
    (r"\bhow many (?:days|weeks|months|years|hours)\b|\bhow long did\b", "time"),
    (r"\bhow many (?:\w+ )?yuan\b", "money"),
    (r"\bhow many (?:tons|tonnes|kilograms|kg|jin)\b", "weight"),
    (r"\bhow many (?:metres|meters|kilometres|kilometers|km)\b", "length"),
    (r"\bhow many percent\b", "percent"),
    (r"\bhow many\b", "count"),
]
_EN_ASK = [(re.compile(p, re.I), kind) for p, kind in _EN_ASKS]


def asked_quantity(question: str) -> Asked | None:
    """What kind of number the question asks for; None when it asks for no number.

    Args:
        question: Chinese (Simplified, as the pipeline measures it) or English.
    Returns:
        `Asked` with the fitting kinds ("多少户" → households; "高出多少" → also percent), or with
        no kinds for a number of no clear kind ("年产量从多少提高到多少", "how large").
    """
    question = search_form(question)
    cue = _ASKS.search(question)
    if not cue or (cue.group(0) == "几" and _WHEN.search(question)):
        return None
    kinds = _english_kinds(question) if not re.search(r"[\u4e00-\u9fff]", question) else _chinese_kinds(question)
    if kinds & {"money", "people", "households", "count", "things", "area", "weight"} and _COMPARES.search(question):
        kinds = kinds | {"percent"}
    return Asked(frozenset(kinds), cue.group(0))


def _chinese_kinds(question: str) -> set[str]:
    if re.search(r"哪一?年|何年|哪个年份", question):
        return {"year"}
    if re.search(r"几月|哪个月|哪一?天|几号|几日|哪一日", question):
        return {"date"}
    if "第几" in question:
        return {"ordinal"}
    for m in _ASKED_UNIT.finditer(question):
        rest = m.group("rest")
        probe = Quantity(1.0, "", "", rest)  # the measure word read as a number's unit would be
        # "多少年", "多少月" are spans ("几月" was taken above as a date).
        kind = "time" if rest[:1] and rest[:1] in "年月" else kind_of(probe)
        if kind is not None:
            return {kind}
        # The noun asked about ("多少资金", "多少稳定收入"); one that counts other things
        # ("多少股份制公司") decides nothing, and no other noun of the question's may decide for it.
        noun = _NOUN_AFTER.match(rest)
        if noun:
            kind = next((k for pattern, k in _ZH_NOUN if pattern.search(noun.group(0))), None)
            if kind == "households":
                return {"households", "people"}
            return {kind} if kind in ("money", "people", "area") else set()
    # "…的面积有多大", "投入是多少", "比例从多少提高到多少": the question's noun.
    kind = next((k for pattern, k in _ZH_NOUN if pattern.search(question)), None)
    return {"households", "people"} if kind == "households" else {kind} if kind else set()


def _english_kinds(question: str) -> set[str]:
    return next(({k} for pattern, k in _EN_ASK if pattern.search(question)), set())


def check_figures(asked: Asked, sentences: list[str], question: str, unsupported: list[str] = ()) -> str:
    """Why the sentences do not give the quantity asked, or "" when they do.

    Args:
        asked: what the question asks for (`asked_quantity`).
        sentences: the answer's supported sentences.
        question: the question (its own numbers are no answer).
        unsupported: the answer's sentences no passage vouches for.
    Returns:
        "no figure" (no number beyond the question's), "wrong quantity: asked money, given time"
        (every new number of a known kind that does not fit), "unverified figure: 14" (an
        unsupported sentence gives a figure of the asked kind that no supported one gives), or "".
    """
    # A lone numeral of the question before no known unit is part of a name ("四川", "三亚"): the
    # answer's "4.0级" is not a number the question names.
    named = [q for q in figures(question) if not (_lone_numeral(q) and kind_of(q) is None)]
    given = [(q, bool(CJK_RE.search(s))) for s in sentences for q in _new(figures(s), named, by_kind=True)]
    if not given:
        return "no figure"
    kinds = [(kind_of(q), chinese) for q, chinese in given]
    if not any(asked.fits(k, chinese) for k, chinese in kinds):
        shown = ", ".join(dict.fromkeys(k for k, _ in kinds if k)) or "no measure word"
        return f"wrong quantity: asked {'/'.join(sorted(asked.kinds))}, given {shown}"
    # The model's own figure for what was asked, in a sentence no passage vouches for, is its
    # answer ("一共组建了14个…[?]"), however well the sentences around it are supported: shown
    # beside them it reads as the pages' figure. A supported figure said again is no such answer.
    guessed = [q for s in unsupported for q in _new(figures(s), named + [q for q, _ in given])
               if kind_of(q) is not None and asked.fits(kind_of(q), bool(CJK_RE.search(s)))]
    return f"unverified figure: {guessed[0].text}" if guessed else ""


def _new(found: list[Quantity], known: list[Quantity], by_kind: bool = False) -> list[Quantity]:
    """The figures found whose value is none of the known ones (whatever their units; `by_kind`:
    unless both kinds are known and differ: "今年4月…用了多长时间" is answered by "4个多小时")."""
    def same(q: Quantity, k: Quantity) -> bool:
        kinds = (kind_of(q), kind_of(k))
        return supported(q, [k], strict_unit=False) and (not by_kind or None in kinds or kinds[0] == kinds[1])
    return [q for q in found if not any(same(q, k) for k in known)]


def passages_lack(asked: Asked, passages: list[str]) -> bool:
    """Whether no passage has a figure that could be of the asked kind (so the LLM need not be asked).

    Only a definite kind counts (`has_figure_of`), so that only passages without any figure of
    the kind refuse.
    """
    # An order is often given in words ("首届", "首次"), and may be inferred from dates: left to the LLM.
    if not asked.kinds or "ordinal" in asked.kinds:
        return False
    return not any(has_figure_of(asked, text) for text in passages)


def has_figure_of(asked: Asked, text: str, exact: bool = False) -> bool:
    """Whether the text has a figure that could be of the asked kind (`exact`: that is of it, not
    of a near kind: "30个" may answer "多少人" but "5000余人次" does); one of unknown kind counts
    when it could be an amount ("300万" with no unit, where money is asked)."""
    return any(_of(asked, kind_of(q), q.value, exact) for q in quantities(text, numerals=True))


def _of(asked: Asked, kind: str | None, value: float, exact: bool) -> bool:
    if kind is None:
        return "money" in asked.kinds and value >= 1e4
    if exact:
        return kind in asked.kinds or any(kind in _EXACT.get(k, ()) for k in asked.kinds)
    return asked.fits(kind)


def fitting_first(asked: Asked | None, passages: list, reads: int) -> list:
    """The passages as the LLM should read them: where none of the first ``reads`` has a figure of
    just the asked kind, those that have one first, then those with one that may be of it (a
    measure word the lists do not know: "8000册"), then the rest, each group in its order.

    The LLM reads the first few retrieved passages only; where the one that states "5000余人次"
    is fourth behind three without a head count, it would answer "多少人次" from none of them.
    Where one of those it reads already has such a figure, the order stays: moving other
    passages past the search's best ones only changes which of them the model copies from (on
    the public set's dev half that cost two answers and gained none).
    """
    if asked is None or not asked.kinds or "ordinal" in asked.kinds:
        return passages
    tiers = [_tier(asked, p.heading + p.text) for p in passages[:reads]]
    if 0 in tiers:  # the usual case: the rest need not be read
        return passages
    tiers += [_tier(asked, p.heading + p.text) for p in passages[reads:]]
    return [p for tier in range(3) for p, t in zip(passages, tiers) if t == tier]


def _tier(asked: Asked, text: str) -> int:
    """0: a figure of just the asked kind; 1: one that may be of it; 2: none (figures read once)."""
    found = [(kind_of(q), q.value) for q in quantities(text, numerals=True)]
    if any(_of(asked, kind, value, exact=True) for kind, value in found):
        return 0
    return 1 if any(kind is None or _of(asked, kind, value, exact=False) for kind, value in found) else 2
