"""`rag add`: files into the corpus, checked, then an index rebuild that embeds only the new texts."""

from __future__ import annotations

import json
import os

import pytest

import rag.models.embedder
from rag.cli import main
from rag.search.index import CURRENT

from fakes import CountingEmbedder

# Two lines of the news-cn dump (news-012.txt, lines 583 and 909), each cut after a sentence.
SHENYANG = ("2023-07-30 08:58，正文：中新网沈阳7月30日电(记者 于海洋)7月29日18时29分，随着沈阳至莫斯科的X8059次列车准时从"
            "中欧班列(沈阳)集结中心(以下简称“集结中心”)驶出，标志着集结中心开行中欧班列已达百列。")
TIANJIN = ("2023-07-29 20:06，正文：中新网天津7月29日电 (记者 王君妍)记者从天津港集团获悉，29日下午，万海航运“吉春”轮靠泊"
           "天津港集装箱码头，标志着万海航运直航南美新航线在天津港正式开通，进一步拓展天津港全球海运网络布局。")


@pytest.fixture
def cli(settings, monkeypatch, capsys):
    embedder = CountingEmbedder()
    monkeypatch.setenv("RAG_CACHE_DIR", str(settings.cache_dir))  # this test's embedding cache only
    monkeypatch.setattr(rag.models.embedder, "load_embedder", lambda _settings: embedder)

    def run(*args):
        code = main(["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), *args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    run.embedder = embedder
    return run


@pytest.mark.slow  # three builds (2 s)
def test_added_dump_is_searchable_and_only_its_texts_are_embedded(cli, settings, tmp_path):
    assert cli("index", "--quiet")[0] == 0
    before = len(cli.embedder.texts)
    dump = tmp_path / "中新网-2023-07.txt"
    dump.write_text(SHENYANG + "\n" + TIANJIN + "\n", encoding="utf-8")
    code, out, err = cli("add", str(dump), "--quiet")
    assert code == 0 and "added 中新网-2023-07.txt" in out and "1 added, 0 already there, 0 refused" in err
    new = cli.embedder.texts[before:]
    assert new and all("沈阳" in t or "天津" in t or "班列" in t or "航线" in t for t in new), new
    assert f"embedded {len(new)} new texts ({before} from the cache)" in out
    code, out, _ = cli("search", "沈阳集结中心开行中欧班列达到多少列？", "-k", "3", "--json")
    passages = json.loads(out)
    assert code == 0 and passages[0]["source"] == "中新网-2023-07.txt" and "百列" in passages[0]["text"]
    assert passages[0]["paper"] == "中新网" and passages[0]["date"] == "2023-07-30"
    code, out, err = cli("add", str(dump))  # again: nothing new, nothing rebuilt
    assert code == 0 and "already there" in out and "embedded" not in out


def test_refused_files_are_listed_the_rest_added_and_the_exit_code_says_so(cli, settings, tmp_path):
    good = tmp_path / "records.jsonl"
    good.write_text(json.dumps({"title": "天津港开通直航南美新航线", "date": "2023-07-29", "body": TIANJIN},
                               ensure_ascii=False) + "\n", encoding="utf-8")
    picture = tmp_path / "photo.txt"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    code, out, err = cli("add", str(good), str(picture), str(tmp_path / "missing.md"), "--no-index")
    assert code == 1 and "added records.jsonl" in out
    assert f"refused {picture}: photo.txt is not UTF-8 or GB18030 text" in err
    assert f"refused {tmp_path / 'missing.md'}: " in err and "No such file" in err
    assert "--no-index" in err and not (settings.index_dir / CURRENT).exists()  # copied only
    assert (settings.corpus_dir / "records.jsonl").read_bytes() == good.read_bytes()
    assert not (settings.corpus_dir / "photo.txt").exists()


@pytest.mark.slow  # a whole `rag add` with an index build: seconds
def test_a_folder_is_added_as_discovery_reads_it(cli, settings, tmp_path):
    folder = tmp_path / "archive"
    (folder / "07").mkdir(parents=True)
    (folder / "07" / "a.txt").write_text(SHENYANG + "\n", encoding="utf-8")
    (folder / "b.txt").write_text(TIANJIN + "\n", encoding="utf-8")
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4\n")
    os.symlink(folder / "b.txt", folder / "c.txt")
    code, out, err = cli("add", str(folder), "--quiet")
    assert code == 1 and "added a.txt" in out and "added b.txt" in out and "embedded" in out
    assert f"refused {folder / 'c.txt'}: link inside" in err and f"refused {folder / 'scan.pdf'}: unknown format" in err
