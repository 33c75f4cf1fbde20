"""SHA-256 of files, read in large blocks (models, index files)."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20


def sha256_file(path: Path, progress: bool = False) -> str:
    """Hex SHA-256 of a file; progress shows a byte-count bar for big files."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    with Path(path).open("rb") as handle, tqdm(total=Path(path).stat().st_size, unit="B", unit_scale=True,
                                                desc=f"hashing {Path(path).name}", disable=not progress) as bar:
        while block := handle.read(BLOCK):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()
