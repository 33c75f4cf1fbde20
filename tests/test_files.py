"""rag.files: write-then-rename for files, folders and links; SHA-256; the time stamp."""

from __future__ import annotations

import hashlib
import re

import pytest

from rag.files import (atomic_file, make_staging_folder, point_symlink, publish_folder, sha256_file, sync_files,
                       timestamp, write_atomic)


def test_a_file_is_replaced_only_once_complete(tmp_path):
    path = tmp_path / "shard.bin"
    path.write_bytes(b"old")
    with atomic_file(path) as out:
        out.write(b"new, ")
        assert path.read_bytes() == b"old"  # readers still see the old file mid-write
        out.write(b"whole")
    assert path.read_bytes() == b"new, whole" and (path.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="checksum"):
        with atomic_file(path) as out:
            out.write(b"half")
            raise ValueError("checksum mismatch")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_text_is_written_as_utf8(tmp_path):
    write_atomic(tmp_path / "memo.json", '{"名": 1}', durable=False)
    assert (tmp_path / "memo.json").read_bytes() == '{"名": 1}'.encode()


def test_a_staged_folder_replaces_the_old_one(tmp_path):
    target = tmp_path / "models" / "e5"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("old")
    staged = make_staging_folder(target.parent, prefix=".e5.")
    assert staged.parent == target.parent and (staged.stat().st_mode & 0o777) == 0o755
    (staged / "config.json").write_text("{}")
    sync_files(staged)
    publish_folder(staged, target)
    assert [p.name for p in target.iterdir()] == ["config.json"] and not staged.exists()
    assert [p.name for p in target.parent.iterdir()] == ["e5"]  # the stale folder is gone too


def test_a_finished_folder_of_another_process_is_kept(tmp_path, monkeypatch):
    target, staged = tmp_path / "e5", make_staging_folder(tmp_path, prefix=".e5.")
    real_rename = type(staged).rename

    def lose_the_race(self, dest):
        if self == staged:  # another process renamed its finished folder into place first
            dest.mkdir()
            (dest / "manifest.json").write_text("{}")
            raise OSError("Directory not empty")
        return real_rename(self, dest)

    monkeypatch.setattr(type(staged), "rename", lose_the_race)
    publish_folder(staged, target, finished=lambda folder: (folder / "manifest.json").is_file())
    assert (target / "manifest.json").is_file()
    with pytest.raises(OSError, match="not empty"):
        publish_folder(staged, tmp_path / "other", finished=lambda folder: False)


def test_a_link_is_repointed_in_one_step(tmp_path):
    for name in ("build-1", "build-2"):
        (tmp_path / name).mkdir()
    point_symlink(tmp_path / "current", "build-1")
    point_symlink(tmp_path / "current", "build-2")
    assert (tmp_path / "current").resolve() == (tmp_path / "build-2").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build-1", "build-2", "current"]


def test_sha256_and_timestamp(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 3_000_000)  # more than one block
    assert sha256_file(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}", timestamp())
