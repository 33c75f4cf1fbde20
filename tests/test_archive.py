"""A dated archive end to end with fakes: records read with their metadata, filters through the
Python API, the LangChain retriever, the pipeline and the CLI; provenance in citations."""

from __future__ import annotations

import json

import pytest

import rag
import rag.models.embedder
from rag.answer.pipeline import Pipeline
from rag.cli import main
from rag.config import Settings
from rag.errors import BadQuestion
from rag.search.retrieve import HybridRetriever, open_searcher

from fakes import HashEmbedder, scripted

RECORDS = [
    {"title": "长江流域防汛形势总体平稳", "date": "2023-07-05", "source": "新华社",
     "body": "新华社武汉7月5日电 长江水利委员会5日表示，长江流域防汛形势总体平稳，三峡水库水位保持在145米左右。"},
    {"title": "多地迎来高温天气", "date": "2023-07-18", "source": "中新网",
     "body": "中新网北京7月18日电 中央气象台18日继续发布高温黄色预警，华北黄淮等地最高气温达到37℃至39℃。"},
    {"title": "防汛应急响应启动", "date": "2023-08-01", "source": "人民网",
     "body": "人民网北京8月1日电 国家防总8月1日将防汛四级应急响应提升至三级，派出6个工作组赴一线指导防汛工作。"},
    {"title": "防汛抢险队伍集结", "date": "2023-08-02", "source": "新华社",
     "body": "新华社石家庄8月2日电 河北省2日集结防汛抢险队伍1200余人，转移群众3万多人，防汛救援工作有序开展。"},
    {"title": "夏粮收购进度过半", "date": "2023-07", "source": "经济日报",
     "body": "今年夏粮收购进度过半，主产区累计收购小麦超过3000万吨，收购价格总体稳定。"},
    {"title": "防汛物资储备充足", "source": "人民网",
     "body": "应急管理部表示，今年中央防汛物资储备充足，各地已预置抢险物资和救援力量。"},
]


@pytest.fixture
def archive(tmp_path, monkeypatch):
    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "news.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in RECORDS) + "\n",
                                       encoding="utf-8")
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache")
    embedder = HashEmbedder()
    monkeypatch.setattr(rag.models.embedder, "load_embedder", lambda _settings: embedder)
    searcher = open_searcher(settings, embedder=embedder, progress=False)
    return settings, searcher


def test_records_keep_their_metadata_into_the_passages(archive):
    settings, searcher = archive
    [p] = [p for p in searcher.search("国家防总提升防汛应急响应", 5) if p.article == "防汛应急响应启动"]
    assert (p.paper, p.date, p.date_precision, p.headline_source) == ("人民网", "2023-08-01", "day", "field")
    assert p.provenance == "人民网 · 2023-08-01"
    doc = p.to_document()
    assert doc.metadata["provenance"] == "人民网 · 2023-08-01" and doc.metadata["label"] == "防汛应急响应启动"
    status = searcher.index.status()
    assert status.outlets == 4 and (status.first_date, status.last_date) == ("2023-07", "2023-08-02")


def test_the_python_api_filters_by_date_and_outlet(archive):
    settings, _ = archive
    passages = rag.retrieve("防汛工作", k=5, settings=settings, date_from="2023-08", date_to="2023-08-31")
    assert {p.article for p in passages} == {"防汛应急响应启动", "防汛抢险队伍集结"}
    xinhua = rag.retrieve("防汛", k=5, settings=settings, paper="新华社")
    assert {p.article for p in xinhua} == {"长江流域防汛形势总体平稳", "防汛抢险队伍集结"}
    with pytest.raises(BadQuestion, match="before it starts"):
        rag.retrieve("防汛", settings=settings, date_from="2023-08-01", date_to="2023-07-01")


def test_the_langchain_retriever_takes_the_same_filters(archive):
    settings, _ = archive
    docs = HybridRetriever(k=5, settings=settings, date_from="2023-07-01", date_to="2023-07-31",
                           paper="中新网").invoke("高温天气")
    assert [d.metadata["article"] for d in docs] == ["多地迎来高温天气"]
    assert docs[0].metadata["date"] == "2023-07-18" and docs[0].metadata["paper"] == "中新网"


def test_the_pipeline_searches_only_the_filtered_articles_and_cites_their_provenance(archive):
    settings, searcher = archive
    chat = scripted("国家防总把防汛应急响应提升至三级[1]。")
    pipeline = Pipeline(settings, searcher, chat)
    answer = pipeline.ask("国家防总把防汛应急响应提升到几级？", date_from="2023-08-01", date_to="2023-08-01")
    assert all(p.date == "2023-08-01" for p in answer.passages)
    assert not answer.abstained and answer.citations[0].provenance == "人民网 · 2023-08-01"
    assert answer.to_dict()["citations"][0]["paper"] == "人民网"
    prompt = chat.seen[-1][-1].content
    assert "防汛应急响应启动（人民网 · 2023-08-01）" in prompt  # the model is told when and where


def test_the_cli_search_filters_and_shows_provenance(archive, capsys):
    settings, _ = archive
    base = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    code = main(base + ["search", "防汛", "-k", "5", "--from", "2023-08", "--to", "2023-08", "--paper", "新华社"])
    out = capsys.readouterr().out
    assert code == 0 and "防汛抢险队伍集结" in out and "新华社 · 2023-08-02" in out
    assert "长江流域" not in out and "人民网" not in out and "only 2023-08-01 – 2023-08-31" in out
    code = main(base + ["search", "防汛", "--from", "2024"])
    assert code == 0 and "nothing in the index matches the filter" in capsys.readouterr().out
    code = main(base + ["search", "防汛", "--from", "yesterday"])
    err = capsys.readouterr().err
    assert code == 2 and "not a date" in err and len(err.splitlines()) == 1


def test_the_archive_bench_reports_build_figures_latency_per_filter_and_serving_memory(archive, monkeypatch):
    from rag.evaluation.archivebench import archive_bench

    settings, searcher = archive
    monkeypatch.setattr("rag.search.retrieve.open_searcher", lambda *a, **k: searcher)
    result = archive_bench(settings, ["防汛应急响应", "高温天气"], repeat=1,
                           chat=scripted(*["国家防总提升了应急响应[1]。"] * 3))
    build = result["build"]
    embedding = build["embedding"]
    assert build["embedded"] > 0 and embedding["texts_per_s"] > 0 and embedding["engine"] == "unknown"  # a fake
    assert build["seconds"] > 0 and build["seconds"] >= embedding["seconds"]  # the whole build and its embedding part
    assert build["peak_rss_mb"] > 0 and build["disk_mb"] >= 0
    assert set(result["retrieve_ms"]) == {"none", "month", "outlet", "month+outlet"}
    assert result["retrieve_ms"]["outlet"]["chunks_passing"] < result["retrieve_ms"]["none"]["chunks_passing"]
    serving = result["serving"]
    assert serving["answers"] == 2 and serving["rss_mb_with_llm"] > 0 and serving["rss_mb_index_and_embedder"] > 0
