"""Numbers compared as quantities (rag/quantities.py)."""


def test_times_are_not_a_measure_word():
    from rag.quantities import missing

    assert missing("每周去大竹园村2次", ["2辆药车分别由2家经营企业负责"]) == ["2次"]
    assert missing("7个最佳村社", ["最佳村社7名"]) == []
