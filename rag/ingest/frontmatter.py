"""One article per file: a .txt/.md file opened by YAML front matter, the way static sites and
note tools keep articles.

    ---
    title: 清泉村电商交易额突破千万
    date: 2023-07-28
    paper: 丽水日报
    page: A3
    ---
    正文第一段……

    ## 小标题
    正文第二段……

Key decisions:
- The front matter's keys are the record field names (`rag.ingest.records.FIELDS`: title, date,
  paper, page, section, url, author, and their Chinese names); other keys are ignored. It is read
  with `yaml.safe_load` only: a file of the corpus must never construct Python objects.
- Paragraphs are separated by blank lines; the lines of one paragraph are joined (hard-wrapped
  Markdown), in the normal form of body text.
- Markdown sub-headings (`## …`) inside the story become `Article.subheads`, not paragraphs, so a
  chunk is labelled with the section it sits in. A `# Title` first line is the headline when the
  front matter gives none; otherwise the headline is the lead's first sentence.
"""

from __future__ import annotations

import re

import yaml

from rag.errors import CorpusError
from rag.ingest.article import Article, first_sentence
from rag.ingest.records import article_metadata, field_names, pick_fields
from rag.textnorm import clean_body, clean_heading

_OPEN = re.compile(r"\A\ufeff?---[ \t]*\r?\n")
_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)
# A "key:" line, in any script: what makes the block after `---` front matter, not a rule.
_KEY_LINE = re.compile(r"^[^\s#:\-][^:\n]*:(?:\s|$)", re.M)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")


def has_front_matter(text: str) -> bool:
    """Whether text opens with YAML front matter: a `---` line, `key:` lines, a closing `---` line."""
    block = _split(text)
    return block is not None and bool(_KEY_LINE.search(block[0]))


def read_article_file(text: str, source: str, *, problems: list[str] | None = None) -> list[Article]:
    """The one article of a file with (or, when the format is forced, without) front matter.

    Args:
        text: the decoded file.
        source: its name relative to the corpus folder.
        problems: if given, gets a line for a date the front matter gives that cannot be read.
    Returns:
        [the article], or [] when the file holds no text beyond its front matter.
    Raises:
        CorpusError: the front matter is not valid YAML (naming the file's line), or not `key: value` lines.
    """
    block = _split(text)
    meta, body = {}, text.lstrip("\ufeff")
    if block is not None:
        front, body = block
        meta = _load(front, source)
    names = {f: n for f, n in field_names("").items() if f != "body"}  # the body is the text itself
    fields = pick_fields(meta, names)
    undated: list[str] = []
    metadata = article_metadata(fields, "date", undated)
    if undated and problems is not None:
        problems.append(f"front matter {undated[0]} not read; the article is kept undated")
    title, paragraphs, subheads = _body(body)
    if not paragraphs:
        return []
    if "title" in fields:
        headline, headline_source = clean_heading(fields["title"]), "field"
        if title and title != headline:  # a `# …` line besides the title heads the story's start
            subheads.insert(0, (0, title))
    elif title:
        headline, headline_source = title, "page"
    else:
        headline, headline_source = first_sentence(paragraphs[0]), "lead"
    return [Article(source, 1, headline, "article", tuple(paragraphs), headline_source=headline_source,
                    subheads=tuple(subheads), **metadata)]


def _split(text: str) -> tuple[str, str] | None:
    """(front matter, body), or None without front matter."""
    opened = _OPEN.match(text)
    if not opened:
        return None
    closed = _CLOSE.search(text, opened.end())
    if not closed:
        return None
    front = text[opened.end():closed.start()]
    return front, text[closed.end():]


def _load(front: str, source: str) -> dict:
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 2}" if mark is not None else ""  # +1: 1-based, +1: the `---` line
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CorpusError(f"{source}: the front matter is not valid YAML{line} ({what}); write it as "
                          f"`key: value` lines between two `---` lines (title: …, date: 2023-07-28, paper: …), "
                          f"quoting a value that holds a colon, then run `rag index` again") from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise CorpusError(f"{source}: the front matter is not `key: value` lines (it reads as a "
                          f"{type(meta).__name__}); write title: …, date: …, paper: … between two `---` lines")
    return meta


def _body(body: str) -> tuple[str | None, list[str], list[tuple[int, str]]]:
    """The `# Title` first line (or None), the paragraphs, and the sub-headings over them."""
    title, paragraphs, subheads, lines = None, [], [], []

    def close() -> None:
        text = clean_body(" ".join(line.strip() for line in lines)).strip()
        if text:
            paragraphs.append(text)
        lines.clear()

    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        heading = _HEADING.match(raw.strip())
        if heading:
            close()
            text = clean_heading(heading.group(2))
            if len(heading.group(1)) == 1 and title is None and not paragraphs and not subheads:
                title = text
            elif text:
                subheads.append((len(paragraphs), text))
        elif raw.strip():
            lines.append(raw)
        else:
            close()
    close()
    # A sub-heading after the last paragraph heads nothing.
    return title, paragraphs, [(i, t) for i, t in subheads if i < len(paragraphs)]
