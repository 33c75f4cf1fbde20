"""The context budget: which passages, and which of their sentences, the LLM reads.

Prompt processing dominates time-to-first-token on a CPU (~100 tokens/s for the 1.5B model), so
the prompt carries excerpts: each passage's sentences ranked by similarity to the question, the
best kept until the character budget is spent, in their original order. Verification still
checks the answer against the full passages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Excerpt:
    """A passage as shown to the LLM: the passage, and the text shown for it."""

    passage: object
    text: str


def select_excerpts(passages, sentence_scores, budget: int, max_passages: int) -> list[Excerpt]:
    """Choose the sentences the LLM reads.

    Args:
        passages: retrieved passages, best first.
        sentence_scores: per passage, (sentence, similarity to the question) in passage order.
        budget: total characters of passage text in the prompt.
        max_passages: at most this many passages.
    Returns:
        Excerpts in retrieval order; passages that contributed nothing are left out.
    """
    passages = passages[:max_passages]
    ranked = sorted(((score, i, j) for i, group in enumerate(sentence_scores[:max_passages])
                     for j, (_, score) in enumerate(group)), reverse=True)
    chosen: dict[int, set[int]] = {}
    used = 0
    for score, i, j in ranked:
        length = len(sentence_scores[i][j][0])
        if used and used + length > budget:
            continue
        chosen.setdefault(i, set()).add(j)
        used += length
    excerpts = []
    for i, passage in enumerate(passages):
        if i not in chosen:
            continue
        group = sentence_scores[i]
        parts, last = [], None
        for j in sorted(chosen[i]):
            if last is not None and j != last + 1:
                parts.append("…")
            parts.append(group[j][0])
            last = j
        excerpts.append(Excerpt(passage, "".join(parts)))
    return excerpts
