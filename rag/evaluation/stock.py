"""The stock LangChain RAG recipe, run beside ours for comparison (`rag bench --stock`).

What a LangChain tutorial builds: each page's text split by ``RecursiveCharacterTextSplitter``,
the chunks embedded into a FAISS index, the top k handed to the LLM under a plain "answer from
the context" prompt (``prompts/stock_answer.md``, after LangChain hub's rlm/rag-prompt). No page
layout, headlines, keyword search, evidence gate or citation checks. The embedder and the LLM are
the ones our pipeline uses, so the comparison measures everything else. As such a chain returns
its retrieved chunks as the sources, those chunks are its citations.
"""

from __future__ import annotations

import time
from pathlib import Path

from langchain_core.messages import HumanMessage

from rag.answer.cite import Citation
from rag.config import Settings
from rag.ingest.corpus import page_files, read_page
from rag.answer.pipeline import REFUSAL_CUES, Answer
from rag.prompts import fill
from rag.search.retrieve import Passage
from rag.textnorm import detect_language


class StockRecipe:
    """Splitter + FAISS + the same embedder and LLM + a plain prompt; ``ask`` returns an `Answer`."""

    def __init__(self, settings: Settings, embedder, chat, chunk_size: int, chunk_overlap: int, k: int):
        """Split and embed the corpus's pages.

        Args:
            settings: where the pages are (``corpus_dir``).
            embedder: the embedder our index uses (``embed_passages``/``embed_queries``).
            chat: the LangChain chat model our pipeline uses.
            chunk_size, chunk_overlap: the splitter's, in characters.
            k: chunks handed to the LLM.
        """
        import faiss
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                                                  add_start_index=True)
        folder = Path(settings.corpus_dir)
        pages = page_files(folder)  # the pages our index reads, read as it reads them
        self.chunks = [(page.name, doc) for page in pages
                       for doc in splitter.create_documents([read_page(page, folder)])]
        vectors = embedder.embed_passages([doc.page_content for _, doc in self.chunks], batch_size=16)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        self.embedder, self.chat, self.k = embedder, chat, k

    def ask(self, question: str) -> Answer:
        """Retrieve k chunks, ask the LLM with the plain prompt, take its words as they come."""
        started = time.perf_counter()
        scores, rows = self.index.search(self.embedder.embed_queries([question]), self.k)
        passages = [self._passage(int(row), float(score), rank)
                    for rank, (row, score) in enumerate(zip(rows[0], scores[0]), start=1) if row >= 0]
        timings = {"retrieve_s": round(time.perf_counter() - started, 4)}
        prompt = fill("stock_answer", question=question, context="\n\n".join(p.text for p in passages))
        pieces = []
        for chunk in self.chat.stream([HumanMessage(prompt)]):
            if chunk.content:
                timings.setdefault("ttft_s", round(time.perf_counter() - started, 3))
                pieces.append(chunk.content)
        text = "".join(pieces).strip()
        timings["total_s"] = round(time.perf_counter() - started, 3)
        declined = not text or any(cue in text.lower() for cue in REFUSAL_CUES + ("don't know", "不知道"))
        citations = [] if declined else [
            Citation(n, p.article, p.source, p.paragraph, p.text, p.score, True, p.chunk_id)
            for n, p in enumerate(passages, start=1)]
        return Answer(question, text, citations, passages, declined, question, detect_language(question),
                      timings, reason="model declined" if declined else "", raw_text=text)

    def _passage(self, row: int, score: float, rank: int) -> Passage:
        source, doc = self.chunks[row]
        start = doc.metadata.get("start_index", 0)
        return Passage(text=doc.page_content, article="", source=source, paragraph=row, score=score,
                       chunk_id=f"stock-{row}", article_no=0, kind="chunk", kicker=None, start=start,
                       end=start + len(doc.page_content), dense_score=score, keyword_score=0.0, rank=rank)
