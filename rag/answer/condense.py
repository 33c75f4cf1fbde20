"""Follow-up questions made standalone before search: "那平阳呢？" → "平阳县…投入了多少钱？".

Search needs the whole question; a follow-up leans on the conversation. The LLM rewrites it from
the last few turns; a rewrite that lost the question is not used, and a dependent question the
model hands back unchanged takes the previous question along, so search still knows what "那里"
refers to.
"""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage

from rag.models.chat import expect_prompt
from rag.prompts import fill
from rag.textnorm import match_key

HISTORY_TURNS = 3  # earlier turns the rewrite sees
ANSWER_CHARS = 300  # of each earlier answer
# Words that point back into the conversation, and the length under which a question usually does.
_ANAPHORA = re.compile(r"那|这|他|她|它|其|该|呢|\b(?:it|its|they|them|their|there|that|this|he|she|his|her)\b", re.I)
_SHORT_QUESTION = 12


def condense_messages(turns, question: str) -> list:
    """The prompt that rewrites a follow-up question: earlier (question, answer) turns and it."""
    lines = []
    for asked, answered in turns:
        lines.append(f"Q: {asked}")
        lines.append(f"A: {str(answered)[:ANSWER_CHARS]}")
    return [HumanMessage(fill("condense", history="\n".join(lines), question=question))]


def condense_samples() -> list[list]:
    """Two condense prompts that part at the history: what they share opens every one."""
    return [condense_messages([(word, word)], word) for word in ("甲", "乙")]


def condense(chat, question: str, history) -> str:
    """The follow-up ``question`` rewritten to stand alone, given earlier (question, answer) pairs.

    Args:
        chat: the chat model (told of the condense prompt first, so llama.cpp keeps its opening).
        question: the validated follow-up.
        history: earlier turns, oldest first; the last `HISTORY_TURNS` are used.
    Returns:
        The search query: the rewrite, or the question itself (with the previous one in front
        when it depends on the conversation) when the rewrite is unusable.
    """
    turns = list(history)[-HISTORY_TURNS:]
    expect_prompt(chat, condense_samples())
    lines = chat.invoke(condense_messages(turns, question), max_tokens=80).content.strip().splitlines()
    rewritten = lines[0].strip().removeprefix("Rewritten question:").strip() if lines else ""
    # A rewrite that lost the question (empty, or far longer than history warrants) is not used.
    if not rewritten or len(rewritten) > 4 * len(question) + 200:
        rewritten = question
    # The small model sometimes hands a dependent question back unchanged ("那里投入了多少资金？");
    # then the last question goes with it, so that search still knows what "那里" is.
    if match_key(rewritten) == match_key(question) and depends_on_context(question):
        rewritten = f"{turns[-1][0]} {question}"
    return rewritten


def depends_on_context(question: str) -> bool:
    """Whether a question probably needs the conversation to be understood."""
    return bool(_ANAPHORA.search(question)) or len(question) <= _SHORT_QUESTION
