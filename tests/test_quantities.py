"""Numbers compared as quantities (rag/answer/quantities.py)."""

import pytest

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


def _read(text):
    from rag.answer.quantities import quantities

    return [(q.value, q.unit, q.ordinal) for q in quantities(text, numerals=True)]


def test_chinese_numerals_read_as_one_number():
    # Each of these was read digit by digit or unit by unit before cn2an ("二〇二三" as 3,
    # "三点五亿" as 3 and 5亿, "百分之四十" as 100 and 4).
    assert _read("二〇二三年") == [(2023, "年", False)]
    assert _read("投入三点五亿元") == [(3.5e8, "元", False)]
    assert _read("占百分之四十") == [(40, "%", False)]
    assert _read("两千三百万人") == [(2.3e7, "#", False)]
    assert _read("百分之十二点五") == [(12.5, "%", False)]
    assert _read("三分之一的村") == [(100 / 3, "%", False)]


def test_digits_with_multipliers_units_and_shares():
    assert _read("1.2万人") == [(12000, "#", False)]
    assert _read("3.5亿元") == [(3.5e8, "元", False)]
    assert _read("三成") == [(30, "%", False)] and _read("3成") == [(30, "%", False)]
    assert _read("百分之40") == [(40, "%", False)]
    # 成 that starts a word is no share.
    assert _read("3成员") == [(3, "成", False)] and _read("一成不变") == [(1, "成", False)]


def test_ordinals_are_kept_apart_from_amounts():
    assert _read("吴兴区第三期政企恳谈会") == [(3, "期", True)]
    assert _read("排名第3") == [(3, "", True)]
    assert _read("获评第三") == [(3, "", True)]


def test_estimates_and_words_are_no_numbers():
    from rag.answer.quantities import chinese_numeral

    assert _read("七八个人") == [] and chinese_numeral("十几") is None and chinese_numeral("万") is None
    assert _read("3个百分点") == [(3, "#", False)]  # not also 百分 → 100


def test_answers_match_passages_written_in_other_numerals():
    from rag.answer.quantities import missing

    assert missing("投资3.5亿元", ["总投资三点五亿元"]) == []
    assert missing("占40%", ["占百分之四十"]) == [] and missing("占4%", ["占百分之四十"]) == ["4%"]
    assert missing("2023年", ["二〇二三年"]) == [] and missing("3年", ["二〇二三年"]) == ["3年"]
    assert missing("30%", ["收益的三成分给村集体"]) == []


@pytest.mark.parametrize("text,value", [("4千万元", 4e7), ("3百万", 3e6), ("5十万", 5e5), ("2百亿", 2e10),
                                        ("12亿", 1.2e9), ("4200多万", 4.2e7)])
def test_compound_multipliers_are_one_multiplier(text, value):
    from rag.answer.quantities import quantities
    assert quantities(text)[0].value == value


def test_an_english_amount_in_digits_off_by_a_power_of_ten_is_corrected():
    from rag.answer.quantities import fix_english_amounts
    assert fix_english_amounts("It raised over 4,000,000 yuan in tax.", ["创造税收超4千万元"]) == [("4,000,000", "40 million")]
    assert fix_english_amounts("It raised 40,000,000 yuan.", ["创造税收超4千万元"]) == []  # right already
    assert fix_english_amounts("It raised 7,000,000 yuan.", ["创造税收超4千万元"]) == []  # not a slip of 万


def test_the_zero_minutes_of_a_time_of_day_are_no_number_of_their_own():
    from rag.answer.quantities import missing, quantities

    # "9:00 AM" restates "上午9时": only the hour must be in the passage; other minutes still count.
    assert [q.value for q in quantities("At 9:00 AM the livestream began.", words=True)] == [9.0]
    assert missing("At 9:00 AM the livestream began.", ["上午9时，直播开始。"]) == []
    assert missing("At 9:30 AM the livestream began.", ["上午9时，直播开始。"]) == ["30"]
