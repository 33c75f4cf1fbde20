"""One-article-per-line dumps → articles: `<stamp>，正文：<body>` on every line, no headlines.

A dump (the news-cn corpus, CRUD-RAG's `documents_dup_*`) prints each article on one line: a
stamp prefix (a date in one of a dozen forms, maybe an outlet, a URL, a section breadcrumb or a
reporter), then `，正文：` and the body, whose paragraphs are runs of spaces. Some lines have no
prefix at all and are still one article each. `read_dump` makes one Article per non-empty line;
`looks_like_dump` tells such a file from an OCR page.

Key decisions:
- Dates: the stamp's (`rag.ingest.dates.parse_stamp`); a stamp without a year takes the year all
  the file's dated stamps agree on, said in `date_note`, or stays month-day. A line with no dated
  stamp takes the month-day its dateline prints, never a year guessed for it (an unstamped line
  may be years older than its neighbours: news-032 mixes 2023 stamps with unstamped 2015 stories).
- Outlet: the prefix's `来源：X` (or the outlet that heads it) wins over the body's dateline
  (`rag.ingest.datelines`); the dateline wins over nothing. 本报讯 names no outlet. A dateline
  after a photo caption or a headline run into the body ("…现场。红网时刻衡阳8月1日讯") counts when
  an outlet this file (or the frequent list) names leads it, right after a sentence end or space.
- Headline: a body that opens with `原标题：…` (or `（原标题：…）`, `来源标题：…`) carries it
  (headline_source "page"); its end is a run of spaces, the dateline that follows it, a source
  label or the words that open a story (a date and a comma, 当地时间, 近日…), whichever comes
  first; a "headline" longer than `HEADLINE_MAX` has run on, and the article gets a lead
  headline instead. Every other headline is the lead sentence after the dateline
  (headline_source "lead"), made from the line's own text, never a neighbour's.
- Paragraphs: the dump marks them with runs of spaces; a run counts where the text before it ends
  a sentence, and a paragraph longer than `PARAGRAPH_CHARS` is cut at sentence ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.errors import CorpusError
from rag.ingest.article import Article, first_sentence
from rag.ingest.datelines import FREQUENT_OUTLETS, KNOWN_OUTLETS, Dateline, outlet_in, outlet_name, read_dateline
from rag.ingest.dates import DateValue, file_year, make_date, parse_stamp, with_year
from rag.textnorm import ends_sentence, split_sentences

BODY_MARK = "，正文："
PREFIX_CHARS = 400  # a stamp prefix ends within this many characters (news-cn's longest: 219)
DETECT_LINES = 50  # `looks_like_dump` decides from this many non-empty lines
DETECT_PREFIX = 150
# A line without a stamp still fits a dump when it is a whole article: page lines are far shorter.
ARTICLE_LINE_CHARS = 200
PARAGRAPH_CHARS = 300
YEAR_NOTE = "year from the file's other stamps"
DATELINE_NOTE = "from the dateline"
EXPECTED = "one article per line: `<date stamp>，正文：<text>` (or the whole article on one line)"

# Tabs and no-break spaces are spaces; zero-width marks web copies leave are nothing. (Chained
# str.replace over the whole file: str.translate with a table is ten times slower here.)
_SPACES = (("\t", " "), ("\xa0", " "), ("\u2002", " "), ("\u2003", " "), ("\r", ""), ("\u200b", ""), ("\ufeff", ""))
_RUN = re.compile(r"[ \u3000]{2,}")
_URL = re.compile(r"https?://[^\s，,|]+")
_SOURCE = re.compile(r"来源\s*[：:]\s*(?P<name>[^|｜]+?)(?=\s*[|｜]|\s{2,}|$)")
_NAMES = r"[\u3400-\u9fff·]{2,4}(?![\u3400-\u9fff])(?:[ 、，,]+[\u3400-\u9fff·]{2,4}(?![\u3400-\u9fff]))*"
_AUTHOR = re.compile(rf"(?:记者|作者)\s*[：:|｜]?\s*(?P<names>{_NAMES})")
_LEADING_NAME = re.compile(r"^(?P<name>[\u3400-\u9fffA-Za-z、/·\-]{2,20})\s{2,}")
_HEADLINE_MARK = re.compile(r"^(?:原|来源)标题\s*[：:]\s*")
_BRACKETED_HEADLINE = re.compile(r"^[（(]原标题\s*[：:]\s*(?P<headline>[^（()）]{2,80}?)\s*[）)]\s*")
# Words that open a story, where a run-in headline ends: "8月14日，", "2023年8月14日", 当地时间…
_STORY_OPENING = re.compile(
    r"\d{4}年\d{1,2}月\d{1,2}日|\d{1,2}月\d{1,2}日(?:[上中下]午|晚间?|凌晨|早间?|傍晚|夜间|盘后|早盘|午间)?[，,]"
    r"|当地时间|北京时间|近日[，,]|日前[，,]|截至\d{4}年|今年以来[，,]|文/|文｜|(?:作者|编辑|来源)[：:]|记者(?:\d{1,2}日)?(?:从|获悉|了解到)"
    r"|据(?:[\u3400-\u9fff《》]{2,14})(?:报道|消息|介绍|统计)")
_MARKS = ("【", "（", "来源", "本文转自", "本报")  # what opens a dateline or a source label besides an outlet
HEADLINE_CHARS = 120  # a run-in headline ends within this many characters
LATE_DATELINE_CHARS = 100  # a dateline after a caption or run-in headline starts within this many
_AFTER = "。！？）) 】"  # what may stand before such a dateline
_FULL_DATELINE = re.compile(r"[电讯]|消息|报道|来源|本文转自")
HEADLINE_MAX = 64  # a longer "headline" has run on into its story: its end was not found


@dataclass(frozen=True)
class _Prefix:
    """What a stamp prefix says about its article."""

    date: DateValue | None = None
    paper: str | None = None
    section: str | None = None
    url: str | None = None
    author: str | None = None


# A file of unstamped lines is a dump when it has this many lines, nearly all this long.
UNSTAMPED_MIN_LINES = 20
UNSTAMPED_LINE_CHARS = 400


def looks_like_dump(text: str) -> bool:
    """Whether a text file is a one-article-per-line dump, from its first non-empty lines.

    Args:
        text: the decoded file.
    Returns:
        True when most of the first `DETECT_LINES` non-empty lines carry `，正文：` within their
        first `DETECT_PREFIX` characters (an OCR page or ordinary text has none), or when they
        are many whole-article lines with no blank line between them.
    """
    head = text.split("\n", DETECT_LINES * 4)[: DETECT_LINES * 4]
    lines = [line for line in head if line.strip()][:DETECT_LINES]
    marked = sum(1 for line in lines if 0 <= line.find(BODY_MARK) < DETECT_PREFIX)
    if lines and marked * 2 > len(lines):
        return True
    # A dump without stamps (news-cn's news-033): many lines, no blank line between them, each a
    # whole article. Pages and article files break lines far shorter, or separate paragraphs by
    # blank lines, and a single article has fewer such lines.
    blank = sum(1 for line in head[: len(lines) * 2] if not line.strip())
    long_lines = sum(1 for line in lines if len(line) >= UNSTAMPED_LINE_CHARS)
    return len(lines) >= UNSTAMPED_MIN_LINES and blank == 0 and long_lines * 10 >= len(lines) * 9


def read_dump(text: str, source: str) -> list[Article]:
    """Read a dump: one article per non-empty line, with its date, outlet and headline.

    Args:
        text: the decoded file.
        source: the file's name relative to the corpus folder, carried by every article.
    Returns:
        The articles numbered 1, 2, … in line order, `record` the line number (1-based).
    Raises:
        CorpusError: fewer than half the non-empty lines fit a dump (`EXPECTED`), with how many do.
    """
    for old, new in _SPACES:
        text = text.replace(old, new)
    lines = [(number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    split = [(number, *_split_line(line)) for number, line in lines]
    fitting = sum(1 for _, prefix, body in split if prefix is not None or len(body) >= ARTICLE_LINE_CHARS)
    if not split or fitting * 2 < len(split):
        raise CorpusError(f"{source} is not a dump: expected {EXPECTED}, but {fitting} of {len(split)} non-empty "
                          f"lines fit; fix the file or read it in its own format, then run `rag index` again")
    prefixes = [_read_prefix(prefix) if prefix else _Prefix() for _, prefix, _ in split]
    year = file_year(p.date for p in prefixes)
    datelines = [read_dateline(body) for _, _, body in split]
    vocabulary = _outlet_pattern(prefixes, datelines)
    articles = []
    for index, ((number, _, body), prefix, dateline) in enumerate(zip(split, prefixes, datelines), start=1):
        articles.append(_article(source, index, number, body, prefix, dateline, year, vocabulary))
    return articles


def _split_line(line: str) -> tuple[str | None, str]:
    """(stamp prefix or None, body) of one line."""
    at = line.find(BODY_MARK, 0, PREFIX_CHARS + len(BODY_MARK))
    if at < 0:
        return None, line.strip()
    return line[:at], line[at + len(BODY_MARK):].strip()


def _read_prefix(prefix: str) -> _Prefix:
    """Date, outlet, section, URL and reporter of a stamp prefix."""
    url = _URL.search(prefix)
    rest = _URL.sub(" ", prefix).strip(" []【】")
    paper = section = None
    source = _SOURCE.search(rest)
    if source:
        paper = outlet_name(source.group("name"))
    elif ">" in rest:
        # "华夏经纬网 > 新闻 > 大陆新闻 > 社会综合  2023-07-26": the site, then its section.
        crumbs = [c.strip() for c in re.sub(r"\s\s.*$", "", rest).split(">")]
        paper, section = outlet_name(crumbs[0]), crumbs[-1] or None
    else:
        leading = _LEADING_NAME.match(rest)
        if leading and outlet_in(outlet_name(leading.group("name")) or ""):
            paper = outlet_name(leading.group("name"))
    author = _AUTHOR.search(rest)
    return _Prefix(parse_stamp(rest), paper, section, url.group(0) if url else None,
                   _names(author.group("names")) if author else None)


def _names(text: str) -> str:
    return " ".join(re.split(r"[ 、，,]+", text.strip()))


def _outlet_pattern(prefixes: list[_Prefix], datelines: list[Dateline | None]) -> re.Pattern:
    """The outlets this file names (prefixes, datelines, the known list), longest first, as one pattern."""
    names = {p.paper for p in prefixes if p.paper} | {d.outlet for d in datelines if d and d.outlet}
    names |= set(KNOWN_OUTLETS) | set(FREQUENT_OUTLETS) | {"本报"}
    names = sorted((n for n in names if len(n) >= 2), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, names)) + "|【|（|来源[：:]|本文转自")


def _article(source: str, index: int, number: int, body: str, prefix: _Prefix, dateline: Dateline | None,
             year: int | None, vocabulary: re.Pattern) -> Article:
    """The article of one line: headline, dates, outlet and paragraphs from its prefix and body."""
    headline = None
    opened = _HEADLINE_MARK.match(body)
    bracketed = _BRACKETED_HEADLINE.match(body)
    if opened:
        headline, body = _run_in_headline(body[opened.end():], vocabulary)
        dateline = read_dateline(body) if headline else None
    elif bracketed:
        # "（原标题：云南一直肠癌患者手术失败死亡：尸检称非直肠癌，医院不认可 ）"
        headline, body = bracketed.group("headline").strip(), body[bracketed.end():]
        dateline = read_dateline(body)
    # A dateline after a caption or a headline run into the body names the outlet, but the lead
    # is still the line's opening.
    late = _late_dateline(body, vocabulary) if dateline is None and not headline else None
    named = dateline or late
    date = prefix.date
    if date is not None and date.precision == "month-day" and year is not None:
        date = with_year(date, year, YEAR_NOTE) or date
    elif date is None and named is not None and named.month is not None:
        date = make_date(named.year, named.month, named.day, DATELINE_NOTE)
    author = prefix.author
    if author is None and named is not None and named.byline:
        found = _AUTHOR.search(named.byline)
        author = _names(found.group("names")) if found else None
    headline_source = "page" if headline else "lead"
    if not headline:
        lead = body[dateline.end:] if dateline is not None else body
        lead = re.sub(r"^[\s：:，,、—-]*(?:[（(][^（()）]{0,30}[)）])?\s*", "", lead)
        headline = first_sentence(lead or body)
    return Article(
        source, index, headline, "article", tuple(split_paragraphs(body)),
        byline=named.byline if named else None,
        date=date.iso if date else None, date_precision=date.precision if date else "unknown",
        date_note=date.note if date else None,
        paper=prefix.paper or (named.outlet if named else None),
        section=prefix.section or (named.section if named else None),
        url=prefix.url, author=author, record=number, headline_source=headline_source)


def _late_dateline(body: str, vocabulary: re.Pattern) -> Dateline | None:
    """A dateline within the opening after a sentence end, a bracket or a space, led by an outlet
    this file names: "图为火灾现场。内蒙古森林消防总队供图 中新网呼伦贝尔8月12日电"."""
    for found in vocabulary.finditer(body, 2, LATE_DATELINE_CHARS):
        if body[found.start() - 1] not in _AFTER:
            continue
        dateline = read_dateline(body[found.start():])
        # Not a bare "X记者" here: "央视新闻 图极目新闻记者…" is a photo credit, then the story's own.
        if (dateline is not None and (dateline.outlet == found.group(0) or found.group(0).startswith(_MARKS))
                and _FULL_DATELINE.search(dateline.text)):
            return dateline
    return None


def _run_in_headline(text: str, vocabulary: re.Pattern) -> tuple[str | None, str]:
    """(headline, body) of the text after `原标题：`; (None, text) where its end cannot be told.

    The headline ends at the first of: a run of spaces, a dateline (led by an outlet this file
    names), a source label, the words that open a story; or where it is printed twice running.
    """
    for k in range(6, min(len(text) // 2, HEADLINE_CHARS) + 1):
        if text[k: 2 * k] == text[:k]:
            return text[:k].strip(), text[2 * k:]
    ends = []
    run = _RUN.search(text, 4, HEADLINE_CHARS)
    if run:
        ends.append((run.start(), run.end()))
    for found in vocabulary.finditer(text, 4, HEADLINE_CHARS):
        dateline = read_dateline(text[found.start():])
        if dateline is not None and (dateline.outlet == found.group(0) or found.group(0).startswith(_MARKS)):
            ends.append((found.start(), found.start()))
            break
    opening = _STORY_OPENING.search(text, 4, HEADLINE_CHARS)
    if opening:
        ends.append((opening.start(), opening.start()))
    for end, start in sorted(ends):
        if "。" not in text[:end] and 0 < len(text[:end].strip()) <= HEADLINE_MAX:
            return text[:end].strip(), text[start:]
    return None, text


def split_paragraphs(body: str, limit: int = PARAGRAPH_CHARS) -> list[str]:
    """The paragraphs of a dump's one-line body.

    Args:
        body: the body as printed; runs of spaces are where the source had paragraph breaks.
        limit: the longest paragraph, in characters, before it is cut at sentence ends.
    Returns:
        The paragraphs, spaces inside them collapsed to one; a run of spaces breaks a paragraph
        only after a sentence end or a photo credit ("… 摄"), so a dateline or a list keeps its line.
    """
    paragraphs, start = [], 0
    for run in _RUN.finditer(body):
        before = body[start: run.start()]
        if ends_sentence(before) or before.endswith("摄"):
            paragraphs.append(before)
            start = run.end()
    paragraphs.append(body[start:])
    out = []
    for paragraph in paragraphs:
        paragraph = _RUN.sub(" ", paragraph).strip()
        if paragraph:
            out.extend(_cut(paragraph, limit))
    return out


def _cut(paragraph: str, limit: int) -> list[str]:
    """A long paragraph as pieces of whole sentences, each at most ``limit`` where sentences allow."""
    if len(paragraph) <= limit:
        return [paragraph]
    pieces, current = [], ""
    for sentence in split_sentences(paragraph):
        if current and len(current) + len(sentence) > limit:
            pieces.append(current.strip())
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current.strip())
    return pieces
