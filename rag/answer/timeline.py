"""`rag.timeline`: how the reporting on a topic developed — dated, cited sentences of the
articles themselves, one per story, in date order, with per-period counts.

    topic ─ validate ─ hybrid search, the whole range, then window by window; keyword scan ─ matching articles
          ─ one per reprint group ─ each article's best sentence, cited ─ date order ─ counts
          ─ (summarise=True: an LLM line per period, checked like answers: rag.answer.timeline_summary)

Decisions:
- Which articles match (the hybrid search window by window, a scan of the keyword index, one rule
  over raw scores) is `rag.answer.timeline_match`.
- Entries are extractive: the sentence of the article that holds most of the topic's words,
  ties broken by its stored embedding's similarity (`HybridSearcher.excerpt_scores`, as the
  answer's excerpts are chosen). Its `Citation` is made by `verify_answer`, the answers' check,
  so an entry is cited exactly as an answer sentence would be.
- A reprinted story is one entry, its earliest printing, with the other printings in `also_in`;
  two articles whose chosen sentence is the same text count as one story too (a copy the
  reprint grouping missed). Counts, though, count every printing: more printings are more
  coverage.
- Articles without a date that can be ordered (unknown, or a month-day without a year) are left
  out of the entries and counted (`Timeline.undated`); a date filter leaves them out anyway.
  Counts are normalised by the dated articles the archive holds per period
  (`rag.answer.timeline_periods`); a period without matching articles is a gap, never filled.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import date as Date

import numpy as np

from rag.answer.cite import Citation, verify_answer
from rag.answer.evidence import question_terms
from rag.answer.timeline_periods import (calendar_of, check_granularity, choose_granularity, period_bounds,
                                         period_label, place)
from rag.answer.timeline_match import Candidate, retrieve_candidates, scan_matches, strength
from rag.answer.timeline_types import Entry, PeriodCount, PeriodSummary, Timeline
from rag.config import Settings
from rag.errors import BadQuestion
from rag.ingest.article import date_order, display_date
from rag.search.filters import SearchFilter, chunk_day_span
from rag.search.passage import passage_from_chunk
from rag.search.retrieve import HybridSearcher, Passage, validate_question
from rag.search.retrieve import also_in  # the one rule for a story's other printings
from rag.textnorm import match_key

MAX_ENTRY_CHARS = 220  # an entry longer than this is cut around the topic's first word
MAX_ENTRIES = 100  # stories listed at most (the counts count every one)
STATEMENT_CHARS = 12  # a shorter "sentence" is a heading or a fragment
NOT_STATEMENTS = ("#", "责编", "责任编辑", "作者：", "摄影报道", "供图")
NEAREST = 3  # headlines offered when the archive does not cover the topic


def build_timeline(searcher: HybridSearcher, topic, date_from=None, date_to=None, outlet=None,
                   granularity: str = "auto", summarise: bool = False, chat=None,
                   settings: Settings | None = None, max_entries: int = MAX_ENTRIES) -> Timeline:
    """The timeline of a topic over one loaded index (see `timeline` for the arguments).

    Args:
        searcher: the loaded hybrid searcher.
        chat: the chat model for `summarise` (a LangChain chat model).
    Raises:
        BadQuestion: an empty topic, a date that is not one, a reversed range, a range the archive
            holds no article in, an unknown granularity.
    """
    started = time.perf_counter()
    settings = settings or searcher.settings
    if topic is None or (isinstance(topic, str) and not topic.strip()):
        raise BadQuestion("the topic is empty; type what the timeline is about, e.g. 台风杜苏芮")
    topic = validate_question(topic, settings)
    granularity = check_granularity(granularity)
    if not isinstance(max_entries, int) or isinstance(max_entries, bool) or not 1 <= max_entries <= 1000:
        raise BadQuestion(f"max_entries must be a whole number from 1 to 1000, not {max_entries!r}")
    filters = SearchFilter.parse(date_from, date_to, outlet)
    index = searcher.index
    calendar = calendar_of(index)
    allowed = filters.mask(index.day_spans, index.outlet_keys) if filters is not None else None
    if len(index.chunks) == 0 or (allowed is not None and not allowed.any()):
        raise BadQuestion(_empty_range(filters, calendar))
    lo = filters.day_from if filters is not None and filters.day_from is not None else calendar.first_day
    hi = filters.day_to if filters is not None and filters.day_to is not None else calendar.last_day
    found, searches = retrieve_candidates(searcher, topic, filters, lo, hi)
    matching = [c for c in found.values() if c.matches] + _scanned(searcher, topic, allowed, found)
    timings = {"retrieve_s": round(time.perf_counter() - started, 4), "searches": searches}
    shown_filter = filters.describe() if filters is not None else ""
    if not matching:
        nearest = list(dict.fromkeys(c.passage.label for c in sorted(found.values(), key=lambda c: -c.passage.score)))
        timings["total_s"] = round(time.perf_counter() - started, 4)
        where = f" ({shown_filter})" if shown_filter else ""
        return Timeline(topic, [], [], [], granularity if granularity != "auto" else "day", covered=False,
                        note=f"no articles on this{where}: no article holds the topic's words "
                             f"({'、'.join(question_terms(topic))}) closely enough",
                        nearest=nearest[:NEAREST], filter=shown_filter, timings=timings)
    dated = [c for c in matching if _orderable(c.passage)]
    undated = len(matching) - len(dated)
    if not dated:  # nothing to place in time: said so, with the undated articles to read instead
        timings["total_s"] = round(time.perf_counter() - started, 4)
        return Timeline(topic, [], [], [], granularity if granularity != "auto" else "day", covered=False,
                        note=f"no dated articles on this: the {undated} that match have no date that can be ordered",
                        nearest=list(dict.fromkeys(c.passage.label for c in matching))[:NEAREST], undated=undated,
                        filter=shown_filter, timings=timings)
    spans = [chunk_day_span(c.passage.date, c.passage.date_precision) for c in dated]
    first = filters.day_from if filters is not None and filters.day_from is not None else min(s[0] for s in spans)
    last = filters.day_to if filters is not None and filters.day_to is not None else max(s[1] for s in spans)
    if granularity == "auto":
        granularity = choose_granularity(first, last)
    stories = _one_per_story(dated)
    entries = _entries(searcher, topic, _keep(stories, granularity, max_entries), granularity)
    counts = _counts(index, calendar, dated, allowed, filters, granularity, first, last)
    notes = []
    if len(stories) > max_entries:
        notes.append(f"{max_entries} of {len(stories)} stories shown, the strongest of each period; "
                     f"the counts hold them all")
    if undated:
        notes.append(f"{undated} matching article{'s' if undated > 1 else ''} without a date that can be "
                     f"ordered left out")
    if filters is not None and filters.has_dates:
        notes.append("articles without a known date are never inside a date range")
    unplaced = sum(1 for e in entries if e.period is None)
    if unplaced:
        notes.append(f"{unplaced} entr{'ies' if unplaced > 1 else 'y'} dated only to the month, not counted "
                     f"per {granularity}")
    timings["entries_s"] = round(time.perf_counter() - started - timings["retrieve_s"], 4)
    result = Timeline(topic, entries, counts, [c.period for c in counts if c.n_articles == 0], granularity,
                      note="; ".join(notes), undated=undated, unplaced=unplaced, filter=shown_filter, timings=timings)
    if summarise:
        from rag.answer.timeline_summary import summarise_periods

        t0 = time.perf_counter()
        result.summaries = summarise_periods(result, chat, searcher.embedder)
        timings["summaries_s"] = round(time.perf_counter() - t0, 3)
    timings["total_s"] = round(time.perf_counter() - started, 4)
    return result


def _empty_range(filters: SearchFilter | None, calendar) -> str:
    """Why a filter leaves nothing, with the archive's span to choose from."""
    span = ""
    if calendar.first_day is not None:
        span = (f"; its dated articles run from {Date.fromordinal(calendar.first_day)} to "
                f"{Date.fromordinal(calendar.last_day)}")
    if filters is None:
        return "the archive holds no articles; run `rag index` over a corpus first"
    return f"the archive holds no articles for {filters.describe()}{span}; widen the range or check the outlet"


def _scanned(searcher: HybridSearcher, topic: str, allowed, found: dict[tuple, Candidate]) -> list[Candidate]:
    """The matching articles the searches did not return (`scan_matches`), as candidates."""
    index = searcher.index
    out = []
    for key, (position, score) in scan_matches(searcher, topic, allowed).items():
        if key not in found or not found[key].matches:
            chunk = index.chunks[position]
            out.append(Candidate(passage_from_chunk(chunk, 0, 0.0, 0.0, score, also_in(index, chunk)), 1.0, True,
                                 searched=False))
    return out


def _orderable(p: Passage) -> bool:
    """Has a date with a year: can be placed in the order (day or month precision)."""
    return chunk_day_span(p.date, p.date_precision) is not None


def _one_per_story(candidates: list[Candidate]) -> list[Candidate]:
    """One candidate per reprint group: its earliest printing (then the strongest passage)."""
    by_story: dict[object, Candidate] = {}
    for c in sorted(candidates, key=lambda c: (date_order(c.passage.date), -c.passage.keyword_score)):
        key = c.passage.group or (c.passage.source, c.passage.article_no)
        by_story.setdefault(key, c)
    return list(by_story.values())


def _keep(stories: list[Candidate], granularity: str, max_entries: int) -> list[Candidate]:
    """At most ``max_entries`` stories, shared out over the periods (the strongest of each), so that
    a busy week does not crowd the quiet ones out of the list."""
    if len(stories) <= max_entries:
        return stories
    spans = np.asarray([chunk_day_span(c.passage.date, c.passage.date_precision) for c in stories])
    numbers = place(spans, granularity)
    by_period: dict[int, list[int]] = {}
    for i, number in enumerate(numbers):
        by_period.setdefault(int(number), []).append(i)

    # Round robin: every period's first story, then every period's second…; in a period, what the
    # hybrid search returned comes before what only the keyword scan found, the strongest first.
    def order(i: int) -> tuple:
        return (not stories[i].searched, *(-x for x in strength(stories[i].passage)), i)

    ranked = [(rank, order(i)) for group in by_period.values() for rank, i in enumerate(sorted(group, key=order))]
    return [stories[key[-1]] for _, key in sorted(ranked)[:max_entries]]


def _entries(searcher: HybridSearcher, topic: str, stories: list[Candidate], granularity: str) -> list[Entry]:
    """Each story's best sentence, cited, in date order; stories whose sentence is the same text
    are one story."""
    stories = sorted(stories, key=lambda c: (date_order(c.passage.date), c.passage.source, c.passage.article_no))
    terms = question_terms(topic)
    passages = [_best_chunk(searcher.index, c.passage, terms) for c in stories]
    scored = searcher.excerpt_scores(topic, passages) if passages else []
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for p, sentences in zip(passages, scored):
        sentence = _best_sentence(sentences, terms, p.text)
        key = match_key(sentence)
        if key in seen:  # a copy the reprint grouping missed: one story, printed again
            i = seen[key]
            where = " · ".join(x for x in (p.paper, display_date(p.date), p.article) if x)
            entries[i] = dataclasses.replace(entries[i], also_in=entries[i].also_in + (where,))
            continue
        seen[key] = len(entries)
        entries.append(_entry(p, sentence, len(entries) + 1, granularity))
    return entries


def _share(terms: list[str], text: str) -> float:
    """Share of the topic's words a text holds."""
    key = match_key(text).lower()
    return sum(1 for t in terms if t in key) / len(terms) if terms else 0.0


def _best_chunk(index, p: Passage, terms: list[str]) -> Passage:
    """The passage, or another chunk of its article that holds more of the topic's words (an
    article found by its headline may name the topic only further down)."""
    best, share = None, _share(terms, p.text)
    if share >= 1.0:
        return p
    for chunk in index.article_chunks(p.source, p.article_no):
        if chunk.chunk_id != p.chunk_id and (other := _share(terms, chunk.text)) > share:
            best, share = chunk, other
    if best is None:
        return p
    return passage_from_chunk(best, p.rank, p.score, p.dense_score, p.keyword_score, p.also_in)


def _best_sentence(sentences: list[tuple[str, float]], terms: list[str], text: str) -> str:
    """The sentence holding most of the topic's words, a statement rather than a tag line, then
    the most similar; cut to MAX_ENTRY_CHARS."""
    pool = [(s.strip(), score) for s, score in sentences if s.strip()] or [(text.strip(), 0.0)]
    sentence = max(pool, key=lambda item: (_share(terms, item[0]), _statement(item[0]), item[1]))[0]
    if len(sentence) <= MAX_ENTRY_CHARS:
        return sentence
    at = min([sentence.find(t) for t in terms if sentence.find(t) >= 0] or [0])
    start = max(0, min(at - MAX_ENTRY_CHARS // 3, len(sentence) - MAX_ENTRY_CHARS))
    return sentence[start:start + MAX_ENTRY_CHARS]


def _statement(sentence: str) -> bool:
    """Reads as a statement: not a hashtag, credit or caption line ("#洪水#、#涿州作者：…责编：…")."""
    return len(match_key(sentence)) >= STATEMENT_CHARS and not any(mark in sentence for mark in NOT_STATEMENTS)


def _entry(p: Passage, sentence: str, n: int, granularity: str) -> Entry:
    """The entry of one passage's sentence, with the citation `verify_answer` makes for it."""
    _, citations, _ = verify_answer(f"{sentence}[1]", [p])
    if citations:
        citation = dataclasses.replace(citations[0], n=n)
    else:  # the sentence is the passage's own, so this does not happen; the citation still says where
        citation = Citation(n, p.article, p.source, p.paragraph, sentence, 0.0, False, p.chunk_id, p.label,
                            p.paper, p.date, p.page, p.provenance, tuple(p.also_in))
    span = chunk_day_span(p.date, p.date_precision)
    number = int(place(np.asarray([span]), granularity)[0])
    return Entry(p.date, p.date_precision, sentence, citation, tuple(p.also_in),
                 period_label(number, granularity) if number >= 0 else None, p)


def _counts(index, calendar, dated: list[Candidate], allowed, filters: SearchFilter | None, granularity: str,
            first: int, last: int) -> list[PeriodCount]:
    """Matching articles per period from ``first`` to ``last``, every printing counted, with the
    archive's dated articles then."""
    articles: dict[tuple, tuple[int, int]] = {}
    for c in dated:
        p = c.passage
        articles[(p.source, p.article_no)] = chunk_day_span(p.date, p.date_precision)
        for member in index.group_members(p.group):
            position = index.position(member.chunk_id)
            span = chunk_day_span(member.date, member.date_precision)
            if span is not None and (allowed is None or allowed[position]):
                articles.setdefault((member.source, member.article_no), span)
    numbers = place(np.asarray(list(articles.values()), dtype=np.int64).reshape(-1, 2), granularity)
    matched: dict[int, int] = {}
    for number in numbers[numbers >= 0]:
        matched[int(number)] = matched.get(int(number), 0) + 1
    archive = calendar.counts(granularity, filters.papers if filters is not None else ())
    start, stop = (int(n) for n in place(np.asarray([[first, first], [last, last]]), granularity))
    out = []
    for number in range(start, stop + 1):
        n, total = matched.get(number, 0), archive.per_period.get(number, 0)
        lo, hi = period_bounds(number, granularity)
        out.append(PeriodCount(period_label(number, granularity), n, total, round(n / total, 4) if total else None,
                               Date.fromordinal(lo).isoformat(), Date.fromordinal(hi).isoformat()))
    return out


def timeline(topic, date_from=None, date_to=None, outlet=None, granularity: str = "auto", summarise: bool = False,
             settings: Settings | None = None, max_entries: int = MAX_ENTRIES) -> Timeline:
    """How the reporting on a topic developed: dated sentences of the articles, cited, in order.

    Args:
        topic: what the timeline is about, in Chinese (or English), e.g. "台风杜苏芮".
        date_from, date_to: only articles dated inside this range ("2023", "2023-07", "2023-07-28").
        outlet: only articles of this outlet (several: a list, or comma-separated).
        granularity: "auto" (chosen from the span), "day", "week", "month" or "year".
        summarise: add an LLM line per period, checked against that period's entries (slow: loads the LLM).
        settings: configuration; `Settings.from_env()` if None.
        max_entries: list at most this many stories, shared out over the periods (1-1000).
    Returns:
        A `Timeline`: `.entries` (date order), `.counts` per period, `.periods_without_coverage`,
        `.covered`/`.nearest` when nothing matches, `.undated`, `.summaries`.
    Raises:
        BadQuestion: an empty topic, a bad or reversed date range, a range the archive holds nothing
            in, an unknown granularity.
    """
    from rag.search.retrieve import open_searcher

    settings = settings or Settings.from_env()
    searcher = open_searcher(settings)
    chat = None
    if summarise:
        from rag.models.chat import shared_chat_model

        chat = shared_chat_model(settings)
    return build_timeline(searcher, topic, date_from, date_to, outlet, granularity, summarise, chat, settings,
                          max_entries)


__all__ = ["Entry", "PeriodCount", "PeriodSummary", "Timeline", "build_timeline", "timeline"]
