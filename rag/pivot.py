"""English answers written and checked in Chinese, then translated sentence by sentence.

The bundled 1.5B model reads Chinese passages and answers in Chinese well; asked to answer in
English it mistranslates names and figures, or falls back to Chinese. So for an English question
(when `Settings.english_via_chinese` is on) the answer is written in Chinese, where citations and
numbers are verified against the passages character by character (`rag.cite`), and only then are
the checked sentences translated, one line each. Each English line keeps its Chinese sentence's
verified markers; a line whose numbers differ from its sentence's is flagged like an unsupported
sentence. Bigger models that answer English directly can turn this off.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rag.cite import MARKER, CheckedSentence, render, split_answer
from rag.quantities import fix_english_amounts, missing

_NUMBERING = re.compile(r"^\s*(?:\d{1,2}[.)、:：]|[-*•])\s+")


def source_lines(checked: list[CheckedSentence]) -> str:
    """The Chinese sentences to translate, one per line, without markers."""
    return "\n".join(c.text.replace("\n", " ") for c in checked)


def _english_lines(translation: str, count: int) -> list[str]:
    """The translation cut into `count` sentences: by line, else by sentence, else as one."""
    text = MARKER.sub("", translation).strip()
    lines = [_NUMBERING.sub("", line).strip() for line in text.splitlines() if line.strip()]
    if len(lines) == count:
        return lines
    sentences = [s for s, _ in split_answer(" ".join(lines))]
    if len(sentences) == count:
        return sentences
    return [" ".join(lines)] if lines else []


def carry_citations(checked: list[CheckedSentence], translation: str) -> tuple[str, list[CheckedSentence]]:
    """Put the translation in place of the checked Chinese sentences, keeping their citations.

    Args:
        checked: the Chinese answer's checked sentences (`rag.cite.verify_answer`).
        translation: the model's English, ideally one line per sentence.
    Returns:
        (rendered English answer with [n] / [?] markers, the English sentences as checked).
        A translation that cannot be aligned becomes one sentence carrying every citation, flagged
        unless all Chinese sentences were supported; an empty one gives ("", []).
    """
    lines = _english_lines(translation, len(checked))
    if not lines:
        return "", []
    if len(lines) == len(checked):
        pairs = list(zip(checked, lines))
    else:
        merged = CheckedSentence(" ".join(c.text for c in checked),
                                 cites=list(dict.fromkeys(n for c in checked for n in c.cites)),
                                 supported=all(c.supported for c in checked),
                                 unverified_numbers=[n for c in checked for n in c.unverified_numbers])
        pairs = [(merged, lines[0])]
    english = []
    for source, line in pairs:
        fixes = fix_english_amounts(line, [source.text])
        for wrong, right in fixes:
            line = line.replace(wrong, right, 1)
        changed = missing(line, [source.text], strict_unit=False)
        english.append(replace(source, text=line, supported=source.supported and not changed,
                               unverified_numbers=source.unverified_numbers + changed,
                               corrected_numbers=source.corrected_numbers + fixes))
    return render(english), english
