"""The asked role: a name answers "矾山镇党委书记叫什么名字？" only where a passage gives it that role.

A small model asked who holds an office answers with whichever name the passages put near a
similar title: the village's Party secretary for the town's ("村党委书记叶经佐" for "矾山镇党委书记"),
the branch secretary for the committee director ("党总支书记林允兰" for "村委会主任"). The overlap
measure cannot see it: the title is restated from the question, and only the name is checked.
So for a Chinese who-question naming an office, a passage vouches for a sentence only when it
names one of the sentence's new words right beside the asked title (after it: "村委会主任林国荣",
also inside a list of titles "党委书记、村委会主任林国荣"; or before it: "林国荣任村党委书记"), and,
where the question says at which level the office is (镇, 村, 县…), that title in the passage is not
given at another level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.script import search_form
from rag.textnorm import match_key, passage_key

# An office: the body it belongs to, then the title. Longest bodies first, so "党总支书记" is one
# title; a bare 委 is the level's committee ("区委书记": level 区).
_BODY = r"(?:党委|党总支|党支部|党工委|党组|纪委|村委会|居委会|管委会|委员会|董事会|监事会|人大常委会|政协|工会|妇联|团委|委)?"
_TITLE = (r"(?:书记|主任|主席|董事长|总经理|总裁|首席执行官|首席财务官|首席运营官|行长|会长|理事长|秘书长|部长|局长|厅长|"
          r"处长|科长|省长|市长|县长|区长|镇长|乡长|村长|院长|校长|所长|站长|社长|厂长|队长|组长|经理|主编|总监|主教练|教练|"
          r"领队|负责人|创始人|发言人|大使|总统|总理|首相|外长)")
_OFFICE = re.compile(rf"(?P<level>省|市|县|区|镇|乡|街道|村|社区)?(?P<title>副?{_BODY}{_TITLE})")
# A question for a person: 谁, 叫什么(名字), 姓名, 哪位.
_WHO = re.compile(r"谁|叫什么|什么名字|姓名|姓什么|哪位")
# What may stand between the office and a who-word after it: "书记是谁", "主任的名字叫什么". Anything
# else asks about a thing of the office ("书记牵头的合作社叫什么"), not its holder.
_TO_WHO = re.compile(r"(?:的|是|为|叫|名叫|名字|现任|目前|现在|当时|分别)*")
# After an office that a who-word before it, in its clause, asks for ("谁是矾山镇党委书记？"): only the
# question's end.
_QUESTION_END = re.compile(r"[？?。!！呢]*")
_LEVELS = ("省", "市", "县", "区", "镇", "乡", "街道", "村", "社区")
_NEAR_AFTER = 12  # characters after a title where its holder's name may stand ("党委书记、村委会主任林国荣")
_NEAR_BEFORE = 6  # characters before it ("林国荣任村党委书记")


DEPUTY = "副"


def held_as_deputy(text: str, start: int) -> bool:
    """Whether the title at ``text[start:]`` is a deputy's ("副部长"): the head's title, written
    after 副, names another person."""
    return text[:start].endswith(DEPUTY)


@dataclass(frozen=True)
class Role:
    """The office a question asks the holder of: its title ("党委书记") and level ("镇"; "" if not said)."""

    title: str
    level: str


# English: "Who is the Party secretary of Shuitou town?", "What is the name of the village's director?"
# The office in English, as the Chinese title it is printed as; a head's title depends on the level.
_EN_TITLES = (("deputy party secretary", "副书记"), ("party secretary", "书记"), ("party chief", "书记"),
              ("deputy director", "副主任"), ("director", "主任"), ("deputy mayor", "副{level}长"),
              ("mayor", "{level}长"), ("deputy head", "副{level}长"), ("head", "{level}长"))
_EN_LEVELS = (("subdistrict", "街道"), ("township", "乡"), ("town", "镇"), ("village", "村"), ("county", "县"),
              ("district", "区"), ("city", "市"), ("province", "省"), ("community", "社区"))
_EN_ROLE = re.compile(
    r"\b(?:who (?:is|was|are|were)|what (?:is|was) the name of|name) (?:the |its |their )?(?:current |then )?"
    rf"(?P<office>{'|'.join(t for t, _ in _EN_TITLES)})\b(?P<rest>[^?.!;]*)", re.I)


def _english_role(question: str) -> Role | None:
    m = _EN_ROLE.search(question)
    if not m:
        return None
    # The level: the place word of "of Shuitou town" (the first one: "of X village in Y county").
    of = re.match(r"\s+(?:of|in|at)\s+(?P<place>.*)", m.group("rest"), re.I)
    words = re.findall(r"[a-z]+", (of.group("place") if of else m.group("office")).lower())
    level = next((zh for w in words for en, zh in _EN_LEVELS if w == en), "")
    title = dict(_EN_TITLES)[m.group("office").lower()]
    if "{level}" in title:
        if level in ("", "村", "社区", "街道"):  # their heads are 主任, not "村长": no title to bind
            return None
        title = title.format(level=level)
    return Role(title, level)


def asked_role(question: str) -> Role | None:
    """The office whose holder a question asks for, or None (not a who-question, no title).

    Chinese: the who-word must ask for the office itself: right after it ("镇党委书记叫什么名字",
    "主任是谁") or before an office that ends the question ("谁是镇党委书记？"). English: "who is
    the <office> (of <place>)", the office put into the Chinese title it is printed as.
    """
    if not re.search(r"[\u4e00-\u9fff]", question):
        return _english_role(question)
    key = match_key(search_form(question))
    for office in reversed(list(_OFFICE.finditer(key))):  # "大观区区委书记…": the place, then the office
        after = key[office.end():]
        who_after = _WHO.search(after)
        clause = re.split(r"[？?。!！，,；;]", key[:office.start()])[-1]
        asked = (who_after is not None and _TO_WHO.fullmatch(after[:who_after.start()])) or (
            _WHO.search(clause) is not None and _QUESTION_END.fullmatch(after))
        if asked:
            return Role(office.group("title"), office.group("level") or "")
    return None


def role_unbound(role: Role, new_words: set[str], passage: str) -> bool:
    """Whether the passage does not give any of the sentence's new words (character pairs) the
    asked office, at the asked level.

    Args:
        role: what the question asks (`asked_role`).
        new_words: the sentence's units beyond the question's (`rag.answer.cite.novel_units`);
            a name is among them.
        passage: the passage's heading and text.
    """
    names = {w for w in new_words if re.fullmatch(r"[\u4e00-\u9fff]{2}", w)}
    if not names:
        return False  # nothing named to bind (an English name, a figure): left to the other checks
    text = passage_key(passage)
    for m in re.finditer(re.escape(role.title), text):
        level = next((lv for lv in _LEVELS if text[:m.start()].endswith(lv)), "")
        if role.level and level and level != role.level:
            continue  # "村党委书记" where the town's was asked
        if role.title[0] != DEPUTY and held_as_deputy(text, m.start()):
            continue  # the deputy's office
        near = text[max(0, m.start() - _NEAR_BEFORE):m.end() + _NEAR_AFTER]
        if any(name in near for name in names):
            return False
    return True
