"""Adding files to the corpus: what is taken, what is refused and why, and that a refusal changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zlib
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import CorpusError
from rag.ingest.corpus import load_corpus
from rag.ingest.intake import MAX_NAME_CHARS, accept, add_paths, safe_name

# Two lines of the news-cn dump (news-007.txt, lines 303 and 329, cut after a sentence).
DUMP = ("2023-08-06，正文：人民网上海8月6日电 （记者葛俊俊）近日，“敦煌文化守望者”全球志愿者派遣计划第四期开营仪式举行。"
        "上海交通大学档案文博管理中心党总支书记万晓玲、党委宣传部副部长张濠、设计学院党委副书记王冲，敦煌研究院副院长张小刚，"
        "文化弘扬部张军、边磊、刘文山等出席，共同见证19位文化守望者开启新一期的守望生活。\n"
        "2023-08-10，正文：人民网上海8月10日电（记者龚莎）8月9日，2023上海国际广告节开幕，并发布了2022年度上海广告业发展状况"
        "（白皮书），上海广告业已进入数字广告时代，产业活力不断释放，产业能级持续提升。白皮书显示，2022年，上海共有主营广告单位"
        "94330户，同比增长23.8％。规模以上企事业单位达到2933户，同比增长33.8%，业务收入2381.8亿元，营收规模继续位居全国第二。\n"
        ).encode("utf-8")
RECORD = json.dumps({"title": "上海广告业进入数字广告时代", "date": "2023-08-10", "paper": "人民网",
                     "body": "白皮书显示，2022年，上海共有主营广告单位94330户，同比增长23.8％。"}, ensure_ascii=False)


def png_bytes() -> bytes:
    """A real 1×1 PNG: what a picture renamed .txt holds."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes.fromhex("00000001000000010802000000"))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under folder, hidden ones included, with the SHA-256 of each file."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), folder) + "/"] = ""
        for name in files:
            path = Path(root) / name
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def small(settings) -> Settings:
    return Settings(**{**settings.__dict__, "max_upload_mb": 1})


def test_a_dump_file_is_saved_and_read_as_the_index_will(settings, corpus_dir):
    saved = accept("人民网-2023-08.txt", DUMP, corpus_dir, settings)
    assert saved == corpus_dir / "人民网-2023-08.txt" and saved.read_bytes() == DUMP
    articles = [a for a in load_corpus(corpus_dir).articles if a.source == saved.name]
    assert [(a.date, a.paper) for a in articles] == [("2023-08-06", "人民网"), ("2023-08-10", "人民网")]
    assert not [p for p in corpus_dir.iterdir() if p.name.startswith(".")]  # no staged file left behind
    record = accept("records.jsonl", RECORD.encode(), corpus_dir, settings)
    assert [a.headline for a in load_corpus(corpus_dir).articles if a.source == record.name] == \
        ["上海广告业进入数字广告时代"]


@pytest.mark.parametrize("name, data, reason", [
    ("empty.txt", b"", "empty.txt is empty"),
    ("../x.txt", DUMP, "is a path, not a file name"),
    ("sub/x.txt", DUMP, "is a path, not a file name"),
    ("..txt", DUMP, "holding `..`"),
    (".hidden.txt", DUMP, "hidden name"),
    ("a<b>.txt", DUMP, "characters a corpus file name may not ('<' '>')"),
    ("x\u202e.txt", DUMP, "characters a corpus file name may not"),  # a right-to-left override
    (" lead.txt", DUMP, "a space at its start or end"),
    ("长" * (MAX_NAME_CHARS + 1) + ".txt", DUMP, "too long a name"),
    ("photo.txt", png_bytes(), "photo.txt is not UTF-8 or GB18030 text"),
    ("zeros.txt", b"\x00" * 64, "holds NUL bytes"),
    ("scan.pdf", b"%PDF-1.4\n", "unknown format .pdf: convert it to text first"),
    ("notes", DUMP, "unknown format (no suffix)"),
    ("blank.txt", b"  \n\n \n", "blank.txt holds no article"),
    ("broken.jsonl", b'{"title": "x"\n{"nope": 1}\n', "broken.jsonl"),
])
def test_each_refusal_has_its_reason_and_leaves_the_folder_as_it_was(settings, corpus_dir, name, data, reason):
    before = snapshot(corpus_dir)
    with pytest.raises(CorpusError) as refused:
        accept(name, data, corpus_dir, settings)
    assert reason in str(refused.value)
    assert snapshot(corpus_dir) == before


def test_a_file_over_the_limit_is_refused_by_its_size(small, corpus_dir):
    before = snapshot(corpus_dir)
    with pytest.raises(CorpusError, match=r"big.txt is 1.0 MB; files of at most 1 MB") as refused:
        accept("big.txt", DUMP * (1 + (1 << 20) // len(DUMP)), corpus_dir, small)
    assert "RAG_MAX_UPLOAD_MB" in refused.value.advice and "RAG_" not in refused.value.message
    assert snapshot(corpus_dir) == before


def test_a_200_mb_file_is_refused_before_it_is_read(settings, corpus_dir, tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    with big.open("wb") as out:
        out.truncate(200 << 20)  # sparse: nothing is written or allocated
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    before = snapshot(corpus_dir)
    report = add_paths([big], corpus_dir, settings)
    [(given, error)] = report.refused
    assert given == str(big) and "big.txt is 200.0 MB" in error.message and "RAG_MAX_UPLOAD_MB" in error.advice
    assert big not in map(Path, opened) and report.added == [] and snapshot(corpus_dir) == before


def test_the_same_name_again_is_already_there_other_bytes_get_a_new_name(settings, corpus_dir):
    first = accept("人民网.txt", DUMP, corpus_dir, settings)
    before = snapshot(corpus_dir)
    assert accept("人民网.txt", DUMP, corpus_dir, settings) == first and snapshot(corpus_dir) == before
    other = DUMP.split(b"\n")[1] + b"\n"
    second = accept("人民网.txt", other, corpus_dir, settings)
    assert second.name == "人民网-2.txt" and second.read_bytes() == other and first.read_bytes() == DUMP
    assert accept("人民网.txt", other, corpus_dir, settings) == second  # found under its new name
    third = accept("人民网.txt", DUMP[:200].rsplit("。".encode(), 1)[0] + "。\n".encode(), corpus_dir, settings)
    assert third.name == "人民网-3.txt"


def test_names_are_nfc_and_keep_their_script():
    assert safe_name("cafe\u0301 报道 (1).md") == "caf\u00e9 报道 (1).md"
    assert safe_name("人民日报【2023-07】.CSV") == "人民日报【2023-07】.CSV"  # suffixes are read case-insensitively


def test_a_name_taken_meanwhile_is_never_overwritten(settings, corpus_dir, monkeypatch):
    import rag.ingest.intake as intake

    real_link = os.link

    def racing_link(source, target):  # another process writes the name between the check and the link
        if Path(target).name == "race.txt" and not Path(target).exists():
            Path(target).write_bytes(b"theirs")
        return real_link(source, target)

    monkeypatch.setattr(intake.os, "link", racing_link)
    saved = accept("race.txt", DUMP, corpus_dir, settings)
    assert (corpus_dir / "race.txt").read_bytes() == b"theirs" and saved.name == "race-2.txt"


def test_uploads_at_once_get_a_name_each(settings, corpus_dir):
    lines = DUMP.split(b"\n")[:2]
    results = []
    threads = [threading.Thread(target=lambda data=data: results.append(accept("same.txt", data, corpus_dir, settings)))
               for data in (lines[0] + b"\n", lines[1] + b"\n", DUMP)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p in results) == ["same-2.txt", "same-3.txt", "same.txt"]


def test_folders_are_walked_as_discovery_walks_the_corpus(settings, corpus_dir, tmp_path):
    folder = tmp_path / "incoming"
    (folder / "2023" / "08").mkdir(parents=True)
    (folder / "2023" / "08" / "dump.txt").write_bytes(DUMP)
    (folder / "records.jsonl").write_text(RECORD + "\n", encoding="utf-8")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4\n")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    (folder / "outside.txt").symlink_to(folder / "records.jsonl")
    report = add_paths([folder, corpus_dir / "000_566d8f183ca588ef.txt", tmp_path / "missing.txt"], corpus_dir,
                       settings)
    assert sorted(p.name for p in report.added) == ["dump.txt", "records.jsonl"]
    assert report.already == [(str(corpus_dir / "000_566d8f183ca588ef.txt"), corpus_dir / "000_566d8f183ca588ef.txt")]
    refused = {given: str(error) for given, error in report.refused}
    assert "link inside the corpus" in refused[str(folder / "outside.txt")]
    assert "unknown format .pdf" in refused[str(folder / "scan.pdf")]
    assert "No such file" in refused[str(tmp_path / "missing.txt")]
    assert len(refused) == 3  # the hidden file is not a corpus file: not read, not reported
