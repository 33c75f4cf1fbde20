"""Numbers compared as quantities (rag/answer/quantities.py)."""


def test_times_are_not_a_measure_word():
    from rag.answer.quantities import missing

    assert missing("每周去大竹园村2次", ["2辆药车分别由2家经营企业负责"]) == ["2次"]
    assert missing("7个最佳村社", ["最佳村社7名"]) == []


def test_passage_numerals_vouch_for_digits():
    from rag.answer.quantities import chinese_numeral, missing

    assert [chinese_numeral(t) for t in ("三十五", "两万", "一百零八", "一亿二千万")] == [35, 20000, 108, 1.2e8]
    assert missing("党建联盟由6方组成", ["联手成立了六方“健康共富”党建联盟"]) == []
    assert missing("党建联盟由7方组成", ["联手成立了六方“健康共富”党建联盟"]) == ["7方"]
    assert missing("投入2万元", ["共投入两万元"]) == [] and missing("投入2万元", ["两名干部"]) == ["2万元"]
