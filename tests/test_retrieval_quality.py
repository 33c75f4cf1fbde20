"""Real embedder, real index on disk, the public evaluation set: the retrieval quality bar."""

from __future__ import annotations


import pytest

import rag
from rag.config import Settings
from rag.evaluation.retrieval import load_set, run_retrieval_eval
from rag.search.retrieve import open_searcher, validate_question

from helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(tmp_path_factory, request):
    base = tmp_path_factory.mktemp("real")
    import shutil

    shutil.copytree(ROOT / "seeds", base / "seeds")
    settings = Settings.from_env(corpus_dir=base / "seeds", index_dir=base / "vectorstore")
    return settings, open_searcher(settings, progress=False)


def test_public_set_recall(real):
    settings, searcher = real
    items = load_set(ROOT / "eval" / "sets" / "public.jsonl")
    report = run_retrieval_eval(items, lambda q, k: searcher.search(validate_question(q, settings), k),
                                progress=False)
    overall, english = report["metrics"]["overall"], report["metrics"]["lang:en"]
    assert overall["recall@5"] >= 0.95, overall
    assert english["recall@5"] >= 0.90, english
    assert overall["article_hit@5"] >= 0.95, overall


def test_api_answers_chinese_and_english_questions_from_the_right_article(real):
    settings, _ = real
    zh = rag.retrieve("江山市清泉村去年的交易额是多少？", k=5, settings=settings)
    assert any("交易额超两亿元" in p.text and p.article == "山货触网 农户生活更红火" for p in zh)
    en = rag.retrieve("How many smart drug cabinets has Anji county built?", k=5, settings=settings)
    assert en[0].article == "送药进村惠民生 健康服务暖民心"
