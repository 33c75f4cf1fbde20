"""Vectors already computed, by embedder and text, so that a build embeds only what is new.

After a page is added or changed, `rag index` embeds only the texts it has not seen with this
embedder; a build that was interrupted (Ctrl+C, kill -9, a full disk) resumes where it stopped,
because vectors are saved batch by batch as they are computed.

Layout: ``<cache_dir>/embeddings/<embedder>/shard-*.npy`` (float32 rows) beside ``shard-*.json``
(the SHA-256 of each row's text). A shard is written under a temporary name and renamed, so it is
complete or absent; one that does not load is ignored. Arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from rag.files import atomic_file

SHARD_ROWS = 256  # texts embedded and saved at a time: what an interruption can cost
MAX_SHARDS = 64  # beyond this many, the shards are merged into one


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Vectors of one embedder, keyed by text. Processes may share it: what one may lose to
    another's merge is only re-embedding. Texts no longer in any corpus stay until the folder is
    deleted (about 1.6 kB each for a 384-dimensional embedder)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.vectors: dict[str, np.ndarray] = {}
        for keys_file in sorted(folder.glob("shard-*.json")):
            try:
                keys = json.loads(keys_file.read_text(encoding="utf-8"))
                rows = np.load(keys_file.with_suffix(".npy"), allow_pickle=False)
            except (OSError, ValueError, EOFError):
                continue  # a damaged or empty shard costs only its re-embedding
            if rows.ndim == 2 and len(rows) == len(keys):
                self.vectors.update(zip(keys, rows))

    @classmethod
    def for_embedder(cls, cache_dir: Path, spec) -> EmbeddingCache:
        """The cache of the embedder ``spec`` (its name and checksum) under ``cache_dir``."""
        name = re.sub(r"[^\w.-]+", "_", spec.name)[-60:]
        digest = hashlib.sha256(f"{spec.name}\0{spec.checksum}".encode()).hexdigest()[:16]
        return cls(Path(cache_dir) / "embeddings" / f"{name}-{digest}")

    def embed(self, embedder, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
        """Vectors of ``texts`` (float32 rows, in order), embedding only the ones not cached.

        Args:
            embedder: has ``embed_passages(texts, batch_size=…, show_progress=…)``.
            texts: passages to embed.
            batch_size: the embedder's batch size.
            progress: a progress bar over the texts to embed.
        """
        from tqdm import tqdm

        keys = [text_key(t) for t in texts]
        todo = list({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        with tqdm(total=len(todo), desc=f"embedding ({len(texts) - len(todo)} of {len(texts)} cached)",
                  unit="text", disable=not progress or not todo) as bar:
            for start in range(0, len(todo), SHARD_ROWS):
                batch = todo[start: start + SHARD_ROWS]
                rows = np.ascontiguousarray(embedder.embed_passages(
                    [t for _, t in batch], batch_size=batch_size, show_progress=False), dtype=np.float32)
                self._save([k for k, _ in batch], rows)
                self.vectors.update(zip((k for k, _ in batch), rows))
                bar.update(len(batch))
        self._merge_if_many()
        if not keys:
            return np.zeros((0, int(getattr(embedder, "dim", 0))), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys]).astype(np.float32)

    def _save(self, keys: list[str], rows: np.ndarray) -> Path | None:
        """Write one shard atomically; returns its key file, or None when the cache cannot be
        written (that only costs re-embedding later)."""
        stem = f"shard-{time.time_ns()}-{os.getpid()}"
        written = []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for suffix, write in ((".npy", lambda f: np.save(f, rows, allow_pickle=False)),
                                  (".json", lambda f: f.write(json.dumps(keys).encode()))):
                with atomic_file(self.folder / f"{stem}{suffix}") as out:  # .json last: it makes the shard count
                    write(out)
                written.append(self.folder / f"{stem}{suffix}")
        except OSError:
            for path in written:
                path.unlink(missing_ok=True)
            return None
        return self.folder / f"{stem}.json"

    def _merge_if_many(self) -> None:
        """Merge the shards this process has loaded into one. (A shard another process wrote
        since then may go too; that only costs its re-embedding.)"""
        shards = sorted(self.folder.glob("shard-*.json"))
        if len(shards) <= MAX_SHARDS:
            return
        keys = list(self.vectors)
        merged = self._save(keys, np.stack([self.vectors[k] for k in keys]).astype(np.float32))
        if merged is None:
            return
        for old in shards:
            old.unlink(missing_ok=True)
            old.with_suffix(".npy").unlink(missing_ok=True)
