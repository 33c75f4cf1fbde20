"""Search: the index on disk and hybrid retrieval over it → ranked `Passage`s.

Owns building and loading the index (FAISS vectors, chunk store as JSONL, manifest), the
embedding cache, Chinese keyword search (jieba + BM25), cross-lingual help for English questions
(pinyin, glossary) and the fused retriever (also as a LangChain `BaseRetriever`). It may import
ingest, models and the shared basics; never answer, app or evaluation.
"""
