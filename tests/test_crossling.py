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


def test_names_the_corpus_prints_with_their_english_join_the_glossary():
    from rag.search.keywords import tokenize

    texts = ["美国芯片巨头台积电（TSMC）宣布在德国建厂。", "台积电（TSMC）董事会批准投资。",
             "微軟首席執行官納德拉（Satya Nadella）表示，", "老虎环球基金（Tiger Global Management）领投。",
             "京东（JD.US）股价上涨。", "据美国有线电视新闻网（CNN）报道"]
    vocabulary = {t for text in texts for t in tokenize(text)} | {"纳德拉"}
    glossary = build_glossary(vocabulary, texts)
    assert "台积电" in glossary["tsmc"] and "巨头" not in glossary["tsmc"]
    # Traditional pages are read in the vocabulary's script; a surname alone finds the person.
    assert "纳德拉" in glossary["nadella"] and "纳德拉" in glossary["satya nadella"]
    # An ordinary English word of a longer name is not a word for it; a stock code is no name.
    assert "基金" not in glossary.get("global", []) and "jd.us" not in glossary
    tokens, coverage = translate("How much did TSMC's board approve?", glossary)
    assert "台积电" in tokens and coverage > 0
    assert glossary["cnn"] == ["美国有线电视新闻网"]  # not its sub-words 美国, 新闻
    # A common word ending the run is not the name by itself; its sub-words are not either.
    music = build_glossary({"环球", "音乐", "环球音乐"}, ["签约环球音乐（Universal Music）"])
    assert "环球音乐" in music["universal music"] and "音乐" not in music["universal music"]
