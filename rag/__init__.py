"""rag: cited answers from Chinese newspaper pages.

The Python API: `rag.ask(question, history=None, **options) -> Answer`, `rag.stream(...)`,
`rag.retrieve(question, k=5) -> list[Passage]`, `rag.HybridRetriever` (LangChain),
`rag.Settings` for configuration, `rag.RagError` and its subclasses for what can go wrong.
"""

from rag.config import Settings
from rag.errors import BadQuestion, CorpusError, IndexMismatch, IndexNotBuilt, ModelUnavailable, RagError
from rag.pipeline import Answer, ask, stream
from rag.retrieve import HybridRetriever, Passage, retrieve

__all__ = ["Answer", "ask", "stream", "BadQuestion", "CorpusError", "HybridRetriever", "IndexMismatch", "IndexNotBuilt",
           "ModelUnavailable", "Passage", "RagError", "Settings", "retrieve"]
