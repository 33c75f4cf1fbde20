"""Models: the embedder and the chat LLM backends, and the bundled model files behind them.

Owns loading sentence-transformers embedders (presets, hub ids, local folders; the bundled
e5-small converted from its 4-bit package), assembling and checksumming the bundled GGUF files,
the in-process llama.cpp adapter (a LangChain `BaseChatModel`) and the choice of chat backend
(llama.cpp, transformers, an OpenAI-compatible server). It serves search and answer and imports
neither: only the shared basics.
"""
