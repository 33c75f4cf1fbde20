"""rag: cited answers from Chinese newspaper pages.

The Python API: `rag.ask(question, history=None, **options) -> Answer`, `rag.stream(...)` (yields
`Retrieved`, then `Delta`s as the answer is written, then `Answered`),
`rag.retrieve(question, k=5) -> list[Passage]`, `rag.HybridRetriever` (LangChain),
`rag.timeline(topic, date_from=None, date_to=None, outlet=None) -> Timeline` (dated, cited entries),
`rag.Settings` for configuration, `rag.RagError` and its subclasses for what can go wrong.
"""

import os

# Offline unless told otherwise: no model-hub lookups, no telemetry. The bundled models are local
# files; someone who wants a hub model downloaded sets HF_HUB_OFFLINE=0 (the error says so).
for _name, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                      ("GRADIO_ANALYTICS_ENABLED", "False")):
    os.environ.setdefault(_name, _value)

from rag.config import Settings  # noqa: E402  (after the offline switches, before any model import)
from rag.errors import (BadQuestion, CorpusError, IndexMismatch, IndexNotBuilt,  # noqa: E402
                        ModelUnavailable, RagError)
from rag.answer.pipeline import Answer, Answered, Delta, Retrieved, ask, stream  # noqa: E402
from rag.answer.timeline import Timeline, timeline  # noqa: E402
from rag.search.retrieve import HybridRetriever, Passage, retrieve  # noqa: E402

__all__ = ["Answer", "Answered", "Delta", "Retrieved", "Timeline", "ask", "stream", "timeline", "BadQuestion", "CorpusError", "HybridRetriever", "IndexMismatch", "IndexNotBuilt",
           "ModelUnavailable", "Passage", "RagError", "Settings", "retrieve"]
