"""Which reader reads a corpus file: detection from suffix and content, a forced format that does
not fit, files no reader reads, and the corpus and the article view reading through one dispatch."""

from __future__ import annotations

import json
import shutil

import pytest

from rag.errors import CorpusError
from rag.ingest.corpus import load_corpus, read_page
from rag.ingest.discovery import discover_pages
from rag.ingest.formats import detect_format, read_file, unread_reason
from rag.ingest.library import ArticleLibrary

from helpers import ROOT, SEEDS

NEWS_CN = ROOT.parent / "shared" / "corpora" / "news-cn" / "news-001.txt"  # where the team keeps it
# The first lines of news-cn's news-001.txt (shortened): what a dump looks like.
DUMP = ("2023-08-16 18:24:57，正文：IT之家 8 月 16 日消息，英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本，"
        "附带最新的 SDK（软件开发工具包）。\n"
        "2023-08-15 10:12:17，正文：据湖北省宜昌市兴山县人民政府消息，14日20时30分左右，兴山县榛子乡平瓦公路一处山体突发岩石崩塌。\n"
        "7-23 21:27，正文：今天下午“北部·联合-2023”演习在日本海海域圆满结束，并在指挥舰齐齐哈尔舰上举行了闭幕式。\n")
RECORD = {"title": "英特尔发布 XeSS 1.2", "date": "2023-08-16", "paper": "IT之家",
          "body": "英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本。\n新版本已经支持动态分辨率缩放。"}
ARTICLE = "---\ntitle: 山货触网 农户生活更红火\ndate: 2021-06-30\n---\n去年，村里的电商交易额达到1200万元。\n"


@pytest.mark.parametrize("name, text, expected", [
    ("a.jsonl", "{}", "jsonl"), ("a.NDJSON", "{}", "jsonl"), ("a.json", "[]", "jsonl"),
    ("a.csv", "title,body", "csv"), ("a.tsv", "title\tbody", "csv"),
    ("a.md", ARTICLE, "article"), ("a.txt", ARTICLE, "article"),
    ("news.txt", DUMP, "dump"), ("a.txt", "# 标题\n\n正文。\n", "page"),
])
def test_detect_format_from_suffix_and_content(name, text, expected):
    assert detect_format(name, text) == expected


@pytest.mark.parametrize("page", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_the_seed_pages_stay_pages(page):
    assert detect_format(page.name, read_page(page)) == "page"


@pytest.mark.skipif(not NEWS_CN.exists(), reason="the news-cn corpus is not on this machine")
def test_a_news_cn_file_is_a_dump():
    lines = read_page(NEWS_CN).split("\n")[:200]
    page = read_file("\n".join(lines), "news-001.txt")
    assert page.format == "dump" and len(page.articles) == len([line for line in lines if line.strip()])


def test_read_file_sets_the_format_of_each_reader():
    jsonl = json.dumps(RECORD, ensure_ascii=False)
    cases = {"a.jsonl": (jsonl, "jsonl"), "a.csv": ("title,body\n甲,正文一段。\n", "csv"), "a.md": (ARTICLE, "article"),
             "a.txt": (DUMP, "dump"), "p.txt": ("# 标题\n\n正文。\n", "page")}
    for name, (text, fmt) in cases.items():
        page = read_file(text, name)
        assert (page.format, page.source) == (fmt, name) and page.articles, name


def test_a_forced_format_that_does_not_fit_says_what_it_expects():
    seed = read_page(SEEDS / "000_566d8f183ca588ef.txt")
    with pytest.raises(CorpusError, match=r"is not JSON Lines.*set to jsonl .*one JSON object per line.*set it to auto"):
        read_file(seed, "000.txt", "jsonl")
    with pytest.raises(CorpusError, match=r"no record has a body.*set to csv .*a header row naming the fields"):
        read_file(seed, "000.txt", "csv")
    with pytest.raises(CorpusError, match=r"000.txt is not a dump: expected one article per line"):
        read_file(seed, "000.txt", "dump")
    with pytest.raises(CorpusError, match=r"a.jsonl is a JSONL file by its name, but the corpus format is set to page, "
                                          r"which expects OCR text"):
        read_file(json.dumps(RECORD), "a.jsonl", "page")
    with pytest.raises(CorpusError, match="unknown corpus format 'xml'"):
        read_file(seed, "000.txt", "xml")


def test_forced_formats_that_fit_are_read_so():
    assert read_file(DUMP, "news.txt", "page").format == "page"
    # One article per file needs no front matter when the format says so.
    (article,) = read_file("# 清泉村\n\n第一段。\n\n第二段。\n", "a.md", "article").articles
    assert (article.headline, article.paragraphs) == ("清泉村", ("第一段。", "第二段。"))


def test_a_suffix_no_reader_reads_is_skipped_with_what_to_convert_it_to(tmp_path):
    shutil.copy(SEEDS / "000_566d8f183ca588ef.txt", tmp_path)
    plain = load_corpus(tmp_path)
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7\n")
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    (tmp_path / "README").write_text("说明", encoding="utf-8")
    (tmp_path / ".hidden.pdf").write_bytes(b"%PDF")
    found = discover_pages(tmp_path)
    assert [p.name for p in found.pages] == ["000_566d8f183ca588ef.txt"] and found.refused == []
    reasons = dict(found.skipped)
    assert set(reasons) == {"README", "report.pdf", "sheet.xlsx"}
    assert reasons["report.pdf"].startswith("unknown format .pdf: convert it to text first (`pdftotext")
    assert "save the sheet as CSV" in reasons["sheet.xlsx"] and "no suffix" in reasons["README"]
    corpus = load_corpus(tmp_path)
    assert dict(corpus.skipped) == reasons and len(corpus.pages) == 1
    assert corpus.checksum == plain.checksum  # files never read are no part of what the index holds
    with pytest.raises(CorpusError, match="unknown format .docx"):
        detect_format("a.docx", "")
    assert "the corpus reads .txt, .md, .jsonl" in unread_reason("a.docx")


def test_binary_files_renamed_to_text_suffixes_are_refused_by_decoding(tmp_path):
    (tmp_path / "good.jsonl").write_text(json.dumps(RECORD, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "sheet.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U0#\xf4" * 20)
    (tmp_path / "zeros.txt").write_bytes(b"\x00" * 64)
    (tmp_path / "utf16.csv").write_bytes("title,body\nA,B\n".encode("utf-16-le"))
    skipped = dict(load_corpus(tmp_path).skipped)
    assert set(skipped) == {"sheet.csv", "zeros.txt", "utf16.csv"}
    assert "(it is a ZIP archive, as .xlsx and .docx files are" in skipped["sheet.csv"]
    assert "holds NUL bytes" in skipped["zeros.txt"] and "iconv -f UTF-16LE" in skipped["utf16.csv"]


def test_a_mixed_corpus_reads_each_file_with_its_reader_and_collects_problems(tmp_path):
    shutil.copy(SEEDS / "004_a4961472c067a0e4.txt", tmp_path)
    lines = [json.dumps(RECORD, ensure_ascii=False), "{broken", json.dumps({"title": "无正文"}, ensure_ascii=False)]
    (tmp_path / "records.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "a.md").write_text(ARTICLE, encoding="utf-8")
    (tmp_path / "news.txt").write_text(DUMP, encoding="utf-8")
    corpus = load_corpus(tmp_path)
    assert {p.source: p.format for p in corpus.pages} == {
        "004_a4961472c067a0e4.txt": "page", "records.jsonl": "jsonl", "a.md": "article", "news.txt": "dump"}
    assert corpus.skipped == []
    assert sorted(corpus.problems) == [
        ("records.jsonl", "line 2 is not a JSON object and was left out (line 2: Expecting property name enclosed "
                          "in double quotes)"),
        ("records.jsonl", "line 3 has no body and was left out")]
    records = next(p for p in corpus.pages if p.format == "jsonl")
    assert {c.source for c in corpus.chunks} >= {"records.jsonl", "a.md", "news.txt"}
    assert records.articles[0].record == 1 and records.articles[0].paper == "IT之家"


def test_a_bad_field_map_or_format_fails_once_not_per_file(tmp_path):
    shutil.copy(SEEDS / "004_a4961472c067a0e4.txt", tmp_path)
    with pytest.raises(CorpusError, match="field map entry 'words=内容'"):
        load_corpus(tmp_path, field_map="words=内容")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        load_corpus(tmp_path, fmt="pdf")


def test_the_article_view_reads_with_the_index_s_format_and_field_map(tmp_path):
    (tmp_path / "export.csv").write_text("新闻标题,新闻内容\n甲,第一条正文。\n乙,第二条正文。\n", encoding="utf-8")
    corpus = load_corpus(tmp_path, field_map="title=新闻标题,body=新闻内容")
    indexed = corpus.articles[1]
    library = ArticleLibrary(tmp_path, field_map="title=新闻标题,body=新闻内容")
    assert library.article("export.csv", 2) == indexed and indexed.headline == "乙"
    with pytest.raises(CorpusError, match="no record has a body"):  # without the map it is not readable
        ArticleLibrary(tmp_path).article("export.csv", 2)
    with pytest.raises(CorpusError, match="is a CSV file by its name, but the corpus format is set to jsonl"):
        ArticleLibrary(tmp_path, fmt="jsonl").article("export.csv", 1)
