"""English → Chinese bridges: CC-CEDICT glossary and romanised names."""

from rag.search.crossling import build_glossary, pinyin_tokens, romanised_name_tokens, syllables_of, translate


def test_glossary_keeps_only_corpus_words_and_translates_english():
    glossary = build_glossary({"猕猴桃", "销售", "村"})
    assert glossary["kiwi fruit"] == ["猕猴桃"] and glossary["village"] == ["村"]
    assert all(set(words) <= {"猕猴桃", "销售", "村"} for words in glossary.values())
    tokens, coverage = translate("How many kiwi fruit did the villages sell?", glossary)
    assert {"猕猴桃", "村", "销售"} <= set(tokens) and 0 < coverage <= 1
    assert translate("清泉村", glossary) == ([], 0.0)


def test_romanised_names_become_syllable_pairs():
    syllables = syllables_of(pinyin_tokens("矾山镇丁志发在丰韵农场"))
    assert pinyin_tokens("矾山镇") == ["fan_shan", "shan_zhen"]
    tokens = romanised_name_tokens("Where does Ding Zhifa of Fanshan work? What Party?", syllables)
    assert {"fan_shan", "ding_zhi", "zhi_fa"} <= set(tokens)
    assert romanised_name_tokens("What is the total?", syllables) == []
