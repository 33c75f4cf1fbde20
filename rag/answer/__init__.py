"""Answer: the pipeline from a question to a checked, cited `Answer` (or an honest refusal).

Owns the composition root (`Pipeline`: validate → condense → retrieve → evidence gate → LLM →
verify), the events it streams, the follow-up condensing, the excerpts the LLM reads, and the
code that decides trust: the evidence gate, citation verification and quantity checks. It may
import search, ingest, models and the shared basics; never app or evaluation.
"""
