"""OCR text repair shared by the corpus, the index and evaluation: one normal form for Chinese text."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and other invisible format characters that OCR and web copies leave behind.
_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{_CJK}]")
# Spaces OCR put between two Chinese characters, or between a Chinese character and a number.
_SPACE_IN_CJK = re.compile(f"(?<=[{_CJK}])[ \u3000]+(?=[{_CJK}])")
_SPACE_CJK_DIGIT = re.compile(f"(?<=[{_CJK}，。、；：）”])[ \u3000]+(?=[0-9])|(?<=[0-9%])[ \u3000]+(?=[{_CJK}，。、；：（“])")
_SPACE_BEFORE_PUNCT = re.compile("[ \u3000]+(?=[，。、；：！？）”』」])|(?<=[（“『「，。、；：])[ \u3000]+")

# Half-width punctuation next to Chinese text is a typesetting accident: make it full-width so
# that sentence splitting and keyword search see one form.
_HALF_TO_FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}
_HALF_PUNCT_NEAR_CJK = re.compile(f"(?<=[{_CJK}“”])[,:;?!()]|[,:;?!()](?=[{_CJK}“”])")

SENTENCE_END = "。！？；…"
CLOSERS = "”’」』）)】"


def normalize_chars(text: str) -> str:
    """Unicode NFC, full-width letters/digits to ASCII, invisible and control characters removed.

    Args:
        text: raw text.
    Returns:
        The text with one spelling per character; line breaks and spaces are kept.
    """
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROL.sub("", text)
    out = []
    for ch in text:
        code = ord(ch)
        # Full-width ASCII letters and digits (Ａ-Ｚ, ａ-ｚ, ０-９) read the same as ASCII.
        if 0xFF10 <= code <= 0xFF19 or 0xFF21 <= code <= 0xFF3A or 0xFF41 <= code <= 0xFF5A:
            out.append(chr(code - 0xFEE0))
        elif ch == "\u00a0":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def fix_punctuation(text: str) -> str:
    """Make half-width punctuation that sits in Chinese text full-width."""
    return _HALF_PUNCT_NEAR_CJK.sub(lambda m: _HALF_TO_FULL[m.group(0)], text)


def join_ocr_spaces(text: str) -> str:
    """Drop the spaces OCR put inside Chinese text ("乡村振 兴", "全县 427 个")."""
    text = _SPACE_IN_CJK.sub("", text)
    text = _SPACE_CJK_DIGIT.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    return re.sub(r"[ \u3000]{2,}", " ", text).strip()


def clean_body(text: str) -> str:
    """The normal form of body text: characters, punctuation and OCR spaces repaired."""
    return join_ocr_spaces(fix_punctuation(normalize_chars(text)))


def clean_heading(text: str) -> str:
    """Headlines keep single spaces, which separate their two halves ("结对交流 共享共建")."""
    text = fix_punctuation(normalize_chars(text)).strip()
    text = _SPACE_BEFORE_PUNCT.sub("", text)
    return re.sub(r"[ \u3000]+", " ", text)


def match_key(text: str) -> str:
    """A whitespace-free normal form for comparing spans (evidence, duplicates)."""
    return re.sub(r"\s+", "", clean_body(text))


def ends_sentence(text: str) -> bool:
    """True when text ends a sentence (terminal punctuation, maybe followed by closing quotes)."""
    stripped = text.rstrip().rstrip(CLOSERS)
    if not stripped:
        return False
    if stripped[-1] in SENTENCE_END + ".!?":
        return True
    # "……（怀宁县委组织部）": an attribution in brackets closes the item.
    return text.rstrip().endswith(("）", ")"))


_SENTENCE_RE = re.compile(f"[^{SENTENCE_END}]*[{SENTENCE_END}]+[{CLOSERS}]*|[^{SENTENCE_END}]+$")


def split_sentences(text: str) -> list[str]:
    """Split at Chinese sentence ends (。！？；…), keeping the punctuation and closing quotes."""
    return [s for s in _SENTENCE_RE.findall(text) if s.strip()]


def cjk_ratio(text: str) -> float:
    """Share of Chinese characters among the non-space characters."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return 0.0
    return sum(1 for c in chars if CJK_RE.match(c)) / len(chars)


_KANA = re.compile("[\u3040-\u30ff]")
_LATIN = re.compile("[A-Za-z]")


def detect_language(text: str) -> str:
    """"zh", "en" or "other" (Japanese, Arabic, Cyrillic… — scripts the answerer does not write)."""
    if _KANA.search(text):
        return "other"
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "other"
    cjk = sum(1 for c in letters if CJK_RE.match(c))
    latin = sum(1 for c in letters if _LATIN.match(c))
    if cjk / len(letters) >= 0.3:
        return "zh"
    if latin / len(letters) >= 0.6:
        return "en"
    return "other"
