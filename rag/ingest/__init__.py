"""Ingest: newspaper files → articles (headline, paragraphs, source) → chunks.

Owns deciding which files are pages (`discovery`: links, FIFOs and devices are refused, never
opened), reading what users bring (OCR'd pages today; other archive formats next), the page-layout
heuristics, chunking, and finding an article again for the chat's article view. It may import
only the shared basics (`rag.config`, `rag.errors`, `rag.textnorm`, `rag.files`),
never search, answer, models or the faces.
"""
