"""Text rules shared by every room: one normal form for Chinese text (OCR repair), the one class
of Chinese characters, sentence ends, and the word lists that search and the answer checks leave out."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Zero-width and other invisible format characters that OCR and web copies leave behind.
_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# A Chinese character, for every rule that asks (normal form, language, character pairs, pinyin,
# units after numbers, names in bylines): the unified ideographs, Extension A (rare characters of
# names and places: 䶮, 㮾, 䃎 occur in real news pages) and the compatibility ideographs that old
# encodings and OCR produce (NFC folds most of them into the unified block). One class, so that a
# rare character never splits a Chinese run in one module while it counts as Chinese in another.
# (The seeds, the evaluation set and its recorded answers hold no character of Extension A or the
# compatibility block, so the evaluation figures do not depend on the width.)
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_RE = re.compile(f"[{CJK}]")
CJK_RUN = re.compile(f"[{CJK}]+")
# Spaces OCR put between two Chinese characters, or between a Chinese character and a number.
_SPACE_IN_CJK = re.compile(f"(?<=[{CJK}])[ \u3000]+(?=[{CJK}])")
_SPACE_CJK_DIGIT = re.compile(f"(?<=[{CJK}，。、；：）”])[ \u3000]+(?=[0-9])|(?<=[0-9%])[ \u3000]+(?=[{CJK}，。、；：（“])")
_SPACE_BEFORE_PUNCT = re.compile("[ \u3000]+(?=[，。、；：！？）”』」])|(?<=[（“『「，。、；：])[ \u3000]+")

# Half-width punctuation next to Chinese text is a typesetting accident: make it full-width so
# that sentence splitting and keyword search see one form.
_HALF_TO_FULL = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！", "(": "（", ")": "）"}
_HALF_PUNCT_NEAR_CJK = re.compile(f"(?<=[{CJK}“”])[,:;?!()]|[,:;?!()](?=[{CJK}“”])")

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


# The answer checks (rag.answer.cite, .roles, .quantities) normalise the same three passages for
# every sentence of every answer they check: those texts are normalised once.
passage_key = lru_cache(maxsize=256)(match_key)


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


# --------------------------------------------------------------------------- word lists
# Four lists for four jobs, side by side so that one is not mistaken for another. They differ on
# purpose: each was written for its own use, and merging them would
# change what the index stores (KEYWORD_STOPWORDS is part of rag.search.keywords.TOKENIZER_ID),
# what the gate counts and what a citation has to support.

# Keyword search (rag.search.keywords): function words that match everywhere and carry no topic;
# kept short on purpose.
KEYWORD_STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 等 也 都 而 就 被 把 对 为 以 之 其 这 那 有 个 着 将 从 到 于 由 并 或 "
    "吗 呢 吧 啊 哪 什么 多少 几 怎么 如何 哪些 哪个 谁 是否 为什么 "
    "the a an of in on at to for is are was were be by with and or what which who how many much "
    "did does do when where why this that from as it its about".split()
)
# English content words (rag.search.crossling: glossary look-ups and romanised names).
ENGLISH_STOPWORDS = frozenset(
    "a about after all also an and any are as at be been before between by can did do does during each "
    "for from had has have he her his how i in into is it its many more most much of on or other over "
    "per s says said she some such than that the their them there these they this those to under up "
    "was were what when where which who whom whose why will with would year years".split()
)
# The evidence gate (rag.answer.evidence): words that ask rather than say; they are not expected
# in an answer's passage.
QUESTION_WORDS = frozenset(
    "名字 叫 哪一年 哪年 哪天 多大 多高 多长 多远 多久 多重 大约 大概 约 一共 总共 怎么样 怎样 哪里 哪儿 "
    "那位 这位 这一 一种 什么样 目前 当时 主要 分别 具体 "
    "roughly approximately about around according name named called kind type much many mentioned "
    "reports report page pages article articles".split())
# Citation support (rag.answer.cite): English words (three letters and more) that carry no content
# of their own; a sentence of only these adds nothing.
FUNCTION_WORDS = frozenset("""the and are was were has have had been for from that this these those with
which who whom what when where how its their there into than then also about after before over under
per each all any some such not but can could would should will shall may might does did
according passage passages""".split())


def unencodable_at(text: str) -> int | None:
    """Where the first character UTF-8 cannot encode sits in ``text`` (a lone surrogate, which a
    JSON escape such as "\\ud800" makes), or None when all of it is text."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None
