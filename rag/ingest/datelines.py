"""Datelines and outlet names: who printed a story, read from the words that open it.

A wire or web story opens with a dateline naming its outlet, often a place and a month-day:
"人民网柏林7月28日电", "中新网约翰内斯堡8月10日电 (记者 王曦)", "IT之家 8 月 16 日消息",
"中国消费者报福州讯（记者张文章）", "央视网消息：", "【环球网报道 见习记者 黄泽佳】",
"国际在线报道(记者 赵银平):", "本报讯" (the paper itself, which the dump does not name).
`read_dateline` reads one; `outlet_name` tidies an outlet given by a label ("来源：光明网-《光明日报》").

Key decisions:
- The outlet is told from the place by how outlet names end (网, 社, 报, 台, 之家, 在线, 客户端,
  新闻 …, `OUTLET_ENDINGS`): the longest opening of the name that ends so is the outlet, the rest
  the place ("中国青年报客户端北京" → 中国青年报客户端 + 北京). `KNOWN_OUTLETS` adds the names
  that end otherwise (南都, 金融界, 快科技); it is a help, not the rule.
- A name part after a dash or a middle dot is a channel, not another outlet or a place
  ("四川新闻网-首屏新闻成都" → 四川新闻网, place 成都).
- "据X报道" is a story quoting another outlet (据法新社报道), so it names no outlet of the story;
  only the wire form "据新华社电" does. A body that opens with a date ("7月27日，…") has none.
- A dateline must open the body and be short; a name that no ending or list marks as an outlet
  makes no dateline, so that "国家统计局7月20日消息" or "外交部发言人…" is never an outlet, and a
  name holding a verb ("…告诉新华社记者", "韩联社援引…") is a sentence, not a dateline.
- What a dump ran into a dateline is left out: a photo caption ("座谈会现场深圳新闻网…讯"), a
  photographer's name ("李蓉 四川在线记者"), a headline before a familiar outlet
  (`FREQUENT_OUTLETS`, measured on news-cn; "…机制本报济南8月9日电"). A photo credit
  ("中青报·中青网记者 梁璇 摄") is no dateline.
- A source label opening the body ("来源：人民网－安徽频道", "本文转自【海外网】") names the outlet;
  one that names a compilation or a picture agency (`NOT_OUTLETS`: 网络综合, 视觉中国) does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

OUTLET_ENDINGS = ("网站", "网", "通讯社", "社", "报", "电视台", "电台", "总台", "卫视", "之家", "在线",
                  "客户端", "APP", "App", "app", "周刊", "杂志")
# Endings of channel names, which are outlets only where no stronger ending is there: "澎湃新闻",
# but "中新网广东新闻" is 中新网's Guangdong channel and "楚天都市报极目新闻" 楚天都市报's app.
CHANNEL_ENDINGS = ("新闻", "融媒体中心", "融媒体", "融媒", "传媒", "资讯", "频道", "财经")
KNOWN_OUTLETS = ("南都", "金融界", "快科技", "中新经纬", "红星资本局", "新浪", "腾讯", "网易", "搜狐", "凤凰",
                 "央视", "央视财经", "央视新闻", "第一财经", "财新", "观察者", "封面", "上游", "大河财立方",
                 "智通财经", "每经", "界面", "澎湃", "潮新闻", "南方+", "红网时刻新闻", "海报新闻", "格隆汇",
                 "华尔街见闻")
# Outlets often seen opening stories (news-cn datelines, 15 or more each): where a headline run
# into its story ends, one of them often begins the dateline (`rag.ingest.dumps`).
FREQUENT_OUTLETS = ("中新网", "IT之家", "中新社", "新华社", "央视网", "人民网", "中国经济网", "新京报", "极目新闻",
                    "荆楚网", "环球网", "中国青年报客户端", "大众网", "湖北日报", "深圳新闻网", "红网时刻新闻", "东方网",
                    "财联社", "智通财经APP", "湖北日报客户端", "参考消息网", "光明日报", "四川在线", "封面新闻", "环球时报",
                    "四川新闻网", "中国消费者报", "中国天气网", "中央纪委国家监委网站", "中新经纬", "科技日报", "金融界",
                    "海外网", "新民晚报", "吉林日报", "海报新闻", "中国发展网", "央视新闻客户端", "长江日报大武汉客户端",
                    "1905电影网", "红星资本局", "汇通财经APP", "红网", "大河财立方", "每经", "大皖新闻", "中国台湾网",
                    "北京商报", "格隆汇", "快科技", "新华网", "东南网", "中国日报网", "观察者网", "人民日报健康客户端",
                    "央广网", "羊城晚报", "中国日报", "财经网", "澎湃新闻", "界面新闻", "新海南客户端", "中国经济周刊",
                    "扬子晚报", "扬子晚报网", "中国经济导报", "河北新闻网", "湖南日报", "楚天都市报", "中国网", "正义网",
                    "运城晚报", "昌吉日报", "中国能源报", "南都", "北京日报", "上游新闻", "每日经济新闻", "华商报")
# What a source label names that is no outlet: a compilation or a picture agency's credit.
NOT_OUTLETS = ("网络综合", "综合", "网络", "网友", "视觉中国", "图虫创意", "东方IC", "摄图网", "受访者供图", "资料图",
               "记者", "作者", "编辑", "通讯员")
# What follows an outlet's name in a dateline that is a column, not a place ("财经网金融讯").
SECTION_WORDS = ("金融", "财经", "科技", "体育", "娱乐", "汽车", "房产", "教育", "健康", "文旅", "军事",
                 "国际", "时政", "社会", "文化", "证券", "股市", "商业", "经济", "产经")

_SPACE = r"[ \u3000\xa0\t]"
_DATE = rf"(?:(?P<y>\d{{4}}){_SPACE}*年{_SPACE}*)?(?P<m>\d{{1,2}}){_SPACE}*月{_SPACE}*(?P<d>\d{{1,2}}){_SPACE}*日"
_ROLE = r"(?:全媒体|全媒|见习|首席|特约|融媒)?记者"
# A name: Chinese characters, Latin letters, channel marks and one bracketed alias
# ("荆楚网（湖北日报网）"); no digits, commas or the word 记者, so a sentence never reads as one.
_NAME = (rf"(?:\d{{2,4}}(?![\d年月日]))?(?:(?!{_ROLE})[\u3400-\u9fffA-Za-z+·\-－—/、 ]){{2,24}}?"
         r"(?:[（(][\u3400-\u9fffA-Za-z]{2,10}[)）])?")
# What stands before the word that ends a dateline: name, maybe a reporter, maybe a date.
_BEFORE = re.compile(rf"(?P<name>{_NAME})(?:综合)?{_SPACE}*(?P<reporter>{_ROLE}{_SPACE}*[\u3400-\u9fff·]{{2,4}})?"
                     rf"{_SPACE}*(?:{_DATE})?{_SPACE}*")
# The words that end a dateline, and what may not follow them ("通讯员", "消息人士", "报道称").
_KIND = re.compile(r"电(?![视影话力商池网台器子信脑])|(?<![腾通资快简喜])讯(?![员])|消息(?![人面称])|报道(?![称说，,])|微特稿|获悉")
_BYLINE = re.compile(rf"{_SPACE}*(?P<byline>[（(][^（()）]{{1,40}}[)）])?{_SPACE}*[：:]?")
# 极目新闻记者 宋清影, 羊城晚报全媒体记者马灿: an outlet's reporter opens the story.
_REPORTER = re.compile(rf"(?P<name>{_NAME})(?P<byline>{_ROLE}){_SPACE}*")
_CAPTION = re.compile(r"^.*(?:现场|供图|资料图|图源网络|图源|视觉中国|摄)\s*")
_SPEECH = ("告诉", "表示", "透露", "介绍", "从", "的", "发布", "援引")  # "澎湃新闻从人社部获悉" is a sentence
MAX_OUTLET_CHARS = 12  # longer "outlets" are a headline run into a dateline
_OPEN = "【[（("
_CLOSE = "】]）)"
_LABEL = re.compile(r"(?:(?:本文)?来源[：:]|本文转自[：:]?)\s*(?:【(?P<b>[^】]{2,20})】|(?P<n>[\u3400-\u9fffA-Za-z－\-·]{2,24}))")
_LABEL_ENDS = " \u3000|｜【（(）)·－-$"
_OWN = ("本报", "本台", "本刊", "本网", "本站")
_FAMILIAR = tuple(sorted(set(FREQUENT_OUTLETS) | set(KNOWN_OUTLETS) | set(_OWN), key=len, reverse=True))
_FAMILIAR_RE = re.compile("|".join(map(re.escape, _FAMILIAR)))
_LOOK = 48  # a dateline ends within this many characters of the start


@dataclass(frozen=True)
class Dateline:
    """A dateline read from the start of a body."""

    text: str  # the dateline as printed, with its byline
    outlet: str | None  # None for 本报讯 and the like: the paper itself, not named
    place: str | None = None
    section: str | None = None
    year: int | None = None
    month: int | None = None
    day: int | None = None
    byline: str | None = None  # "记者 王曦", as printed inside the brackets
    end: int = 0  # where the dateline ends in the body it was read from


def outlet_name(label: str) -> str | None:
    """An outlet as a label gives it, tidied: the first of several, channels and brackets dropped.

    Args:
        label: "央视网", "光明网-《光明日报》", "新海南客户端、南海网", "椰网/海拔新闻",
            "北京日报客户端-长安街知事", "成都日报·锦观新闻".
    Returns:
        The outlet ("光明网", "新海南客户端", "椰网" …), or None when nothing is left.
    """
    name = re.split(r"[、/|｜,，;；\-－—·•]", label.strip(), maxsplit=1)[0]
    name = _once(re.sub(r"[《》【】\s]", "", name).strip(" ：:"))
    return name or None


def _once(name: str) -> str:
    """A name printed twice in a row ("人民网人民网北京", "格隆汇格隆汇") with its first copy dropped."""
    for k in range(2, len(name) // 2 + 1):
        if name[k: 2 * k] == name[:k]:
            return name[k:]
    return name


def outlet_in(name: str) -> str | None:
    """The outlet a name opens with ("中国青年报客户端北京" → 中国青年报客户端), or None if none."""
    return _split_name(name)[0] if name else None


def _split_name(name: str) -> tuple[str | None, str | None, str | None]:
    """(outlet, place, section) of a dateline's name, or (None, …) when no outlet is marked."""
    head, *channels = re.split(r"[\-－—·]", name)
    tokens = _once(re.split(r"[、/]", head)[0]).split()
    joined = "".join(tokens)
    outlet, rest = _outlet_prefix(joined)
    first = _FAMILIAR_RE.match(joined)
    if first and _FAMILIAR_RE.match(joined, first.end()):
        outlet, rest = first.group(0), ""  # "中国经济导报中国发展网": two outlets, the first prints it
    tokens = [_late_outlet(token) for token in tokens]
    whole = [i for i, token in enumerate(tokens) if _outlet_prefix(token)[1] == ""]
    if len(tokens) > 1 and whole:
        # "中国经济导报 中国发展网讯", "大众网 潍坊报道": the first word that is an outlet is the
        # outlet, and what follows it the place; words before it are a reporter ("李蓉 四川在线记者").
        outlet, rest = tokens[whole[0]], "".join(tokens[whole[0] + 1:])
    if outlet is None or len(outlet) > MAX_OUTLET_CHARS:
        return None, None, None
    if channels:
        # "四川新闻网-首屏新闻成都": the place follows the channel's own name.
        channel, after = _outlet_prefix(channels[-1].replace(" ", ""))
        rest = after if channel else ""
    if not rest or rest.endswith(CHANNEL_ENDINGS) or _outlet_prefix(rest)[1] == "":
        return outlet, None, None
    if rest in SECTION_WORDS or len(rest) > 8:
        return outlet, None, rest if rest in SECTION_WORDS else None
    return outlet, rest, None


def _clean_name(name: str) -> str | None:
    """A dateline's name without a trailing alias and what ran into it; None for a quote."""
    name = re.sub(r"[（(][^（()）]*[)）]$", "", name).strip()
    # A photo caption the dump ran into the dateline: "座谈会现场深圳新闻网2023年8月2日讯".
    name = _CAPTION.sub("", name).strip()
    if any(verb in name for verb in _SPEECH) or name.startswith(("据", "根据", "由")):
        return None  # "…总经理周跃龙告诉新华社记者", "据台媒中时新闻网消息": a quote, not a dateline
    return _late_outlet(name)


def _late_outlet(name: str) -> str:
    """``name`` from the first familiar outlet in it when none opens it: a caption or headline ran
    into the dateline ("麻城特色节目展演四川在线", "市民对话一把手本报")."""
    if _FAMILIAR_RE.match(name):
        return name
    for found in _FAMILIAR_RE.finditer(name, 1):
        rest = name[found.end():]
        # It must end the name, or be the paper's own mark before a place ("…机制本报济南").
        if not rest or (found.group(0) in _OWN and re.fullmatch(r"[\u3400-\u9fff]{1,6}", rest)):
            return name[found.start():]
    return name


def _outlet_prefix(name: str) -> tuple[str | None, str]:
    """The longest opening of ``name`` that is an outlet, and what follows it."""
    known = max((len(k) for k in KNOWN_OUTLETS if name.startswith(k)), default=0)
    best = 0
    for endings in (OUTLET_ENDINGS, CHANNEL_ENDINGS):
        for i in range(2, len(name) + 1):
            if name[:i].endswith(endings) and _real_ending(name[:i]):
                best = max(best, i)
        if best:
            break
    best = max(best, known)
    if best < 2:
        return None, name
    return name[:best], name[best:]


def _real_ending(opening: str) -> bool:
    """False for a bare generic word ("新闻", "日报") and for words that merely end so ("通报")."""
    if opening in OUTLET_ENDINGS or opening in ("新闻", "日报", "晚报", "电报", "资讯", "传媒", "频道", "海报", "画报",
                                                 "财经", "网络"):
        return False
    return not opening.endswith(("通报", "公报", "举报", "预报", "汇报", "简报", "捷报", "情报"))


def read_dateline(body: str) -> Dateline | None:
    """Read the dateline that opens a body, if one does.

    Args:
        body: the article's text from its start (leading spaces are skipped).
    Returns:
        The dateline: outlet (None for 本报讯), place, section, the month-day (and year) it
        prints, and its byline; None when the body opens otherwise.
    """
    found = _open(body.lstrip(" \u3000\xa0\t"))
    if found is None:
        return None
    return replace(found, end=body.index(found.text) + len(found.text))


def _open(text: str) -> Dateline | None:
    """The dateline or source label ``text`` (spaces stripped) opens with."""
    # A label naming the source: "来源：人民网－安徽频道", "本文转自【央视新闻客户端】".
    label = _LABEL.match(text)
    if label and label.group("b"):
        return Dateline(label.group(0), outlet_name(label.group("b")))
    if label and text.startswith(("来源", "本文来源")):
        return _labelled(label)
    # "本文转自：人民网人民网北京8月1日电": a reprint's mark before the dateline it reprints.
    text = re.sub(r"^本文转自[：:]", "", text)
    if text[:1] in _OPEN:
        # 【环球网报道 见习记者 黄泽佳】, （观察者网讯）: the dateline is the bracket.
        close = text.find(_CLOSE[_OPEN.index(text[0])], 1, _LOOK)
        if close < 0:
            return None
        found = _read(text[1:close], bracketed=True)
        return replace(found, text=text[: close + 1]) if found else None
    if text.startswith("据"):
        # "据法新社报道" quotes another outlet; only the wire form names the story's own.
        m = re.match(r"据(新华社|中新社)电", text)
        return Dateline(m.group(0), m.group(1)) if m else None
    return _read(text)


def _labelled(label: re.Match) -> Dateline | None:
    """The outlet of a "来源：X" label opening a body; X may run into the text ("来源：扬子晚报近日，…")."""
    name = re.sub(r"^原创稿", "", label.group("n"))
    after = label.string[label.end(): label.end() + 1]
    ended = not after or after in _LABEL_ENDS or (after in "，。；" and _outlet_prefix(name)[1] == "")
    if len(name) <= MAX_OUTLET_CHARS and ended:
        outlet, rest = _outlet_prefix(outlet_name(name) or "")
        if outlet and rest:
            # "来源：台海网厦门大学夜景 资料图", "来源：每日经济新闻每经编辑": what ran into the label.
            return Dateline(label.group(0)[: label.end() - len(rest)], outlet)
        name = outlet_name(name)
        return Dateline(label.group(0), name) if name not in NOT_OUTLETS else None
    # Run in: the shortest opening that ends as an outlet does ("参考消息网据路透社" → 参考消息网),
    # else a known name it opens with ("华尔街见闻由于油价…").
    ends = [i for i in range(2, min(len(name), MAX_OUTLET_CHARS) + 1)
            if name[:i].endswith(OUTLET_ENDINGS) and _real_ending(name[:i]) and name[i: i + 1] != "道"]
    known = [len(k) for k in KNOWN_OUTLETS if name.startswith(k)]
    if not ends and not known:
        return None
    i = min(ends) if ends else max(known)
    return Dateline(label.group(0)[: label.start("n") + len(label.group("n")) - len(name) + i], name[:i])


def _read(text: str, bracketed: bool = False) -> Dateline | None:
    """A dateline ending in 电/讯/消息/报道 (or an outlet's reporter) at the start of ``text``."""
    stop = re.search(r"[，,。；;！？!?“”\"]", text[:_LOOK])
    window = text[: stop.start() if stop else _LOOK]
    for kind in _KIND.finditer(text, 0, len(window) + 1):
        if kind.start() >= len(window):
            break
        before = _BEFORE.fullmatch(text[: kind.start()])
        if before is None:
            continue
        if kind.group(0) == "电" and not before.group("m") and not before.group("name").endswith(("社", "网")):
            continue  # "X电" without a date is only the wire's form (新华社电)
        byline = None if bracketed else _BYLINE.match(text, kind.end())
        end = byline.end() if byline else kind.end()
        inner = (byline.group("byline") if byline else None) or (text[kind.end():].strip() if bracketed else None)
        if bracketed and inner and not re.search(r"记者|通讯员|编辑|作者", inner):
            continue  # "（福克斯新闻报道截图）": a caption in brackets
        found = _dateline(before, text[:end].strip(), before.group("reporter") or inner)
        if found is not None:
            return found
    m = _REPORTER.match(window)
    if m and not re.match(r"\s*[\u3400-\u9fff·]{2,4}\s*摄", text[m.end():]):  # a photo credit
        found = _dateline(m, m.group(0).strip(), None)
        if found is not None and found.place is None:
            return found
    return None


def _dateline(m: re.Match, printed: str, byline: str | None) -> Dateline | None:
    """The Dateline of a match's name and date, or None when its name marks no outlet."""
    groups = m.groupdict()
    name = _clean_name(groups.get("name") or "")
    if name is None:
        return None
    own = next((o for o in _OWN if name.startswith(o)), None)
    if own:
        outlet, section = None, None
        place = name[len(own):].replace(" ", "") or None
        if place and (len(place) > 8 or not re.fullmatch(r"[\u3400-\u9fff]+", place)):
            return None
    else:
        outlet, place, section = _split_name(name)
        if outlet is None:
            return None
    year = int(groups["y"]) if groups.get("y") else None
    month = int(groups["m"]) if groups.get("m") else None
    day = int(groups["d"]) if groups.get("d") else None
    if month is not None and not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    byline = (byline or "").strip(" ：:()（）\u3000") or None
    return Dateline(printed, outlet, place, section, year, month, day, byline)
