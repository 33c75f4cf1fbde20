"""A retrieved passage, and the validation every question gets before it is searched."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

from langchain_core.documents import Document

from rag.config import Settings
from rag.errors import BadQuestion
from rag.ingest.article import provenance
from rag.ingest.chunks import Chunk, Headed
from rag.textnorm import unencodable_at


@dataclass(frozen=True)
class Passage(Headed):
    """A retrieved chunk with where it comes from and how it scored."""

    text: str
    article: str
    source: str
    paragraph: int
    score: float
    chunk_id: str
    article_no: int
    kind: str
    kicker: str | None
    start: int
    end: int
    dense_score: float
    keyword_score: float
    rank: int
    # The article's metadata (rag.ingest.chunks.Chunk carries it from the reader).
    date: str | None = None
    date_precision: str = "unknown"
    paper: str | None = None
    page: str | None = None
    section: str | None = None
    url: str | None = None
    subhead: str | None = None
    headline_source: str = "page"
    group: str | None = None  # reprint group
    # The other printings of this story, "outlet · date · headline", earliest first.
    also_in: tuple[str, ...] = ()

    @property
    def provenance(self) -> str:
        """"outlet · date · page", with what is known (rag.ingest.article.provenance)."""
        return provenance(self)

    def to_document(self) -> Document:
        """The passage as a LangChain Document (text as page_content, the rest as metadata)."""
        metadata = asdict(self)
        text = metadata.pop("text")
        metadata["also_in"] = list(self.also_in)
        metadata.update(label=self.label, provenance=self.provenance)
        return Document(page_content=text, metadata=metadata, id=self.chunk_id)


def validate_question(question, settings: Settings) -> str:
    """Clean a question and reject what cannot be searched.

    Raises:
        BadQuestion: not text (or holding a lone surrogate), empty, or longer than
            settings.max_question_chars.
    """
    if isinstance(question, bytes):
        try:
            question = question.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadQuestion("the question is not valid UTF-8 text; send it as UTF-8") from exc
    if not isinstance(question, str):
        raise BadQuestion(f"the question must be text, not {type(question).__name__}")
    if (at := unencodable_at(question)) is not None:  # it would fail inside the embedder's tokenizer
        raise BadQuestion(f"the question holds a lone surrogate (U+{ord(question[at]):04X}) at character "
                          f"{at + 1}, which is not text; send the question as UTF-8 text")
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", question)
                      if unicodedata.category(ch) not in ("Cc", "Cf") or ch in "\n\t")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise BadQuestion("the question is empty; type a question about the newspaper pages")
    if not any(ch.isalnum() for ch in cleaned):
        raise BadQuestion("the question has no words, only punctuation or symbols; type a question")
    if len(cleaned) > settings.max_question_chars:
        raise BadQuestion(f"the question is {len(cleaned):,} characters long; the limit is "
                          f"{settings.max_question_chars:,} — ask about one thing at a time")
    return cleaned


def passage_from_chunk(chunk: Chunk, rank: int, score: float, dense: float, keyword: float,
                       also_in: tuple[str, ...] = ()) -> Passage:
    """A chunk as a search result, its metadata carried over."""
    return Passage(
        text=chunk.text, article=chunk.article, source=chunk.source, paragraph=chunk.paragraph, score=score,
        chunk_id=chunk.chunk_id, article_no=chunk.article_no, kind=chunk.kind, kicker=chunk.kicker,
        start=chunk.start, end=chunk.end, dense_score=dense, keyword_score=keyword, rank=rank,
        date=chunk.date, date_precision=chunk.date_precision, paper=chunk.paper, page=chunk.page,
        section=chunk.section, url=chunk.url, subhead=chunk.subhead, headline_source=chunk.headline_source,
        group=chunk.group, also_in=also_in)
