"""Simplified and Traditional Chinese: which script a text is written in, and OpenCC conversions.

The pages are (almost all) Simplified; readers also ask in Traditional. A Traditional question is
searched and answered in its Simplified form (`search_form`), so that keyword search, the
evidence gate, the prompt and the citation checks see one script, and the answer is written back
in the asker's script (`writer_for`); quotes from the pages stay as printed.

Key decisions:
- The script is decided by counting characters, not by a list of "Traditional characters": a
  character counts as Traditional when OpenCC's t2s changes it, and as Simplified when every
  Traditional standard (s2t, s2tw, s2hk) writes it otherwise, so that characters that Taiwan or
  Hong Kong keep (台, 着, 裏) count for neither. The larger count wins; a tie, or a text without
  either kind (English, numbers, "中华"), has no script (None).
- `search_form` changes only text that reads as Traditional: Simplified text comes back as the very
  same string, so the seeds' index and the evaluation figures do not move. It runs t2s first and
  stops there when nothing changed, which is all that most text costs (some 9 million characters a
  second: the whole news corpus, lines and sentences, in 10 s).
- The asker's regional usage is read off the question cheaply: of OpenCC standard (爲, 裏),
  Taiwan (為, 裡) and Hong Kong (為, 裏), the one that would change the question least; a tie
  keeps the OpenCC standard.
- OpenCC converters are built once per configuration (loading one reads its dictionaries) and
  shared between threads: OpenCC's maintainers state that a converter is thread-safe (it only
  reads its dictionaries; BYVoid/OpenCC#231), so only building one needs the lock.
"""

from __future__ import annotations

import threading
from typing import Callable

from rag.errors import RagError

TRADITIONAL = "traditional"
SIMPLIFIED = "simplified"
# Traditional standards, in the order a tie prefers them, with the conversion that normalises
# Traditional text to each one ("" for the OpenCC standard: a round trip through Simplified).
_STANDARDS = (("s2t", ""), ("s2tw", "t2tw"), ("s2hk", "t2hk"))

_CONVERTERS: dict = {}
_LOCK = threading.Lock()


def _convert(config: str, text: str) -> str:
    """``text`` through the OpenCC configuration ``config`` ("t2s", "s2tw"…)."""
    converter = _CONVERTERS.get(config)
    if converter is None:
        with _LOCK:
            converter = _CONVERTERS.get(config)
            if converter is None:
                try:
                    import opencc
                except ImportError as exc:
                    raise RagError("Traditional Chinese needs the OpenCC converter, which is not installed",
                                   advice="pip install opencc") from exc
                converter = _CONVERTERS[config] = opencc.OpenCC(config)
    return converter.convert(text)


def _changed(text: str, *outputs: str) -> int:
    """How many characters of ``text`` every one of ``outputs`` writes otherwise."""
    if all(len(out) == len(text) for out in outputs):  # OpenCC's tables keep the length, nearly always
        return sum(1 for chars in zip(text, *outputs) if all(c != chars[0] for c in chars[1:]))
    kept = set().union(*outputs)
    return sum(1 for ch in text if ch not in kept)


def _traditional_count(text: str, simplified: str) -> int:
    return _changed(text, simplified)


def _simplified_count(text: str) -> int:
    return _changed(text, *(_convert(config, text) for config, _ in _STANDARDS))


def script_of(text: str) -> str | None:
    """The script a Chinese text is written in.

    Args:
        text: any text; mixed text counts by its majority.
    Returns:
        "traditional", "simplified", or None when it reads as neither (English, numbers, a tie,
        characters both scripts share).
    Raises:
        RagError: OpenCC is not installed.
    """
    traditional = _traditional_count(text, _convert("t2s", text))
    simplified = _simplified_count(text)
    if traditional > simplified:
        return TRADITIONAL
    if simplified > traditional:
        return SIMPLIFIED
    return None


def to_simplified(text: str) -> str:
    """``text`` in Simplified characters (OpenCC t2s; Simplified text passes unchanged).

    Raises:
        RagError: OpenCC is not installed.
    """
    return _convert("t2s", text)


def _standard_of(like: str) -> str:
    """The OpenCC configuration that writes Traditional the way ``like`` does (s2t, s2tw or s2hk)."""
    base = _convert("t2s", like)
    best, fewest = "s2t", None
    for config, normalise in _STANDARDS:
        form = _convert(normalise, like) if normalise else _convert(config, base)
        changes = _changed(like, form)
        if fewest is None or changes < fewest:
            best, fewest = config, changes
    return best


def to_traditional(text: str, like: str | None = None) -> str:
    """``text`` in Traditional characters.

    Args:
        text: Simplified (or mixed) text.
        like: the asker's own Traditional text: its usage, Taiwan (為, 裡) or Hong Kong (為, 裏), is
            followed where it shows; otherwise, and without it, the OpenCC standard (s2t).
    Returns:
        The converted text.
    Raises:
        RagError: OpenCC is not installed.
    """
    config = _standard_of(like) if like and script_of(like) == TRADITIONAL else "s2t"
    return _convert(config, text)


def search_form(text: str) -> str:
    """The text as it is searched and indexed: its Simplified form when it reads as Traditional.

    Args:
        text: a question, a headline or page text.
    Returns:
        ``text`` itself (the same string) unless it reads as Traditional.
    Raises:
        RagError: OpenCC is not installed.
    """
    simplified = _convert("t2s", text)
    if simplified == text:  # no Traditional character: the common case costs one pass
        return text
    if _traditional_count(text, simplified) > _simplified_count(text):
        return simplified
    return text


def writer_for(asker: str) -> Callable[[str], str] | None:
    """How to write text for whoever asked ``asker``: a conversion to their Traditional usage, or
    None when answers stay as written (Simplified, English, no telling).

    Raises:
        RagError: OpenCC is not installed.
    """
    if script_of(asker) != TRADITIONAL:
        return None
    config = _standard_of(asker)
    return lambda text: _convert(config, text)


class StreamConverter:
    """Converts text that arrives in pieces (an answer as the model writes it).

    OpenCC matches the longest phrase, so how a character is written may depend on the characters
    after it ("头发" → "頭髮", "发现" → "發現"): each piece is converted with all the text before it,
    and the last `HOLD` characters wait for the next piece or `flush`. A phrase longer than that
    can still be written differently in the stream than in the whole text, which is why the final
    answer is converted whole (and a window replaces what it streamed).
    """

    HOLD = 4

    def __init__(self, convert: Callable[[str], str]):
        self._convert = convert
        self._text = ""
        self._sent = 0

    def feed(self, piece: str) -> str:
        """The converted text that is settled now that ``piece`` came ("" while it waits)."""
        self._text += piece
        converted = self._convert(self._text)
        settled = max(self._sent, len(converted) - self.HOLD)
        out, self._sent = converted[self._sent:settled], settled
        return out

    def flush(self) -> str:
        """The rest of the converted text, at the end of the stream."""
        converted = self._convert(self._text)
        out, self._sent = converted[self._sent:], len(converted)
        return out
