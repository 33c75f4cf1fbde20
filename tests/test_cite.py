"""Citation checks: markers parsed and verified, missing ones attached, unsupported flagged."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from rag.answer.cite import UNSUPPORTED_MARK, lexical_support, numbers_missing, split_answer, verify_answer


@dataclass
class P:
    text: str
    article: str = "标题"
    source: str = "t.txt"
    paragraph: int = 1
    chunk_id: str = "t:1:1"
    paper: str | None = None
    date: str | None = None
    page: str | None = None
    also_in: tuple = ()
    kind: str = "article"
    label = property(lambda self: self.article)
    heading = property(lambda self: self.article)
    provenance = property(lambda self: "")


PASSAGES = [
    P("苍南通过以强带弱、项目牵引等模式，建立党建联盟48个，覆盖村社党组织325个。", "党建联盟", chunk_id="a"),
    P("清泉村90%的村民都回到村里。全村有2000多人从事电商，去年交易额超两亿元。", "山货触网", chunk_id="b"),
    P("安吉县完成建设智慧药房1家、智能药柜6个，群众满意率达99.5%以上。", "送药进村", chunk_id="c"),
]


def test_split_answer_keeps_markers_with_their_sentence():
    pieces = split_answer("苍南建立了48个党建联盟[1]。覆盖325个村社党组织。[1][3] 另一句【2】")
    assert pieces == [("苍南建立了48个党建联盟。", [1]), ("覆盖325个村社党组织。", [1, 3]), ("另一句", [2])]
    assert split_answer("It set up 48 alliances [1]. It covers 325 [1, 2].") == [
        ("It set up 48 alliances.", [1]), ("It covers 325.", [1, 2])]


def test_a_sentence_said_again_is_kept_once():
    # A looping model: the same two sentences until the tokens run out, the last one cut off.
    looped = "有50余户村民投资[1]。有几台智能机柜？" * 4 + "有50余户村民投资[2]。有50余"
    assert split_answer(looped) == [("有50余户村民投资。", [1, 2]), ("有几台智能机柜？", []), ("有50余", [])]
    text, _, checked = verify_answer("苍南建立了48个党建联盟[1]。苍南建立了48个党建联盟[1]。", PASSAGES)
    assert len(checked) == 1 and text.count("48") == 1


def test_pointing_at_passages_is_a_citation_not_a_claim():
    assert split_answer("根据第1和第2段，苍南建立了48个党建联盟。") == [("苍南建立了48个党建联盟。", [1, 2])]
    assert split_answer("According to passage [3], it set up 48 alliances.") == [("It set up 48 alliances.", [3])]
    assert split_answer("根据第[2]和[3]两篇报道，交易额超两亿元。") == [("交易额超两亿元。", [2, 3])]
    _, citations, checked = verify_answer("根据第1个资料，苍南建立了48个党建联盟。", PASSAGES)
    assert [c.n for c in citations] == [1] and checked[0].unverified_numbers == []


def test_correct_marker_is_kept():
    text, citations, checked = verify_answer("苍南建立了48个党建联盟[1]。", PASSAGES)
    assert text == "苍南建立了48个党建联盟[1]。"
    assert [c.n for c in citations] == [1] and citations[0].article == "党建联盟"
    assert "48个" in citations[0].quote and checked[0].supported


def test_out_of_range_and_wrong_markers_are_dropped_and_the_right_passage_attached():
    text, citations, _ = verify_answer("苍南建立了48个党建联盟[7][2]。", PASSAGES)
    assert [c.n for c in citations] == [1] and text == "苍南建立了48个党建联盟[1]。"


def test_missing_marker_is_attached_by_overlap_and_numbers():
    _, citations, _ = verify_answer("安吉县群众满意率达99.5%以上。", PASSAGES)
    assert [c.n for c in citations] == [3]


def test_unsupported_sentence_is_flagged_not_sourced():
    text, citations, checked = verify_answer("平阳县今年的GDP是1000亿元[1]。", PASSAGES)
    assert citations == [] and not checked[0].supported
    assert text.endswith(UNSUPPORTED_MARK + "。") and checked[0].unverified_numbers == ["1000亿元"]


def test_a_number_no_passage_holds_unsources_the_sentence():
    _, citations, checked = verify_answer("苍南建立了50个党建联盟[1]。", PASSAGES)
    assert citations == [] and checked[0].unverified_numbers == ["50个"]


def test_support_measures():
    assert lexical_support("建立党建联盟48个", PASSAGES[0].text) == 1.0
    assert lexical_support("完全无关的句子内容", PASSAGES[0].text) < 0.2
    assert numbers_missing("满意率99.5%，药柜6个，共7个", [PASSAGES[2].text]) == ["7个"]
    assert numbers_missing("1,200 villages", ["共1200个村"]) == []


def test_numbers_are_compared_as_quantities_with_their_unit():
    assert numbers_missing("output of 42 million yuan and sales of 1.2 billion", ["产值4200多万元，销售额超12亿元"]) == []
    assert numbers_missing("产值4200万元", ["产值4200多万元"]) == []
    # The same digits with another multiplier or unit are another number.
    assert numbers_missing("一顿午饭收老人约70元", ["投入近70万元，向70周岁以上老人开放"]) == ["70元"]
    assert numbers_missing("When COVID-19 hit in April", ["4月，鄞州发生疫情"]) == []
    assert numbers_missing("评出了7个最佳村社", ["最终评出最佳村社7名"]) == []  # measure words vary


def test_an_english_amount_with_a_misread_multiplier_is_corrected():
    passages = [P("2014年，清泉村投资300万元建起五层大楼。", chunk_id="q")]
    text, citations, checked = verify_answer("Qingquan invested 300 million yuan in 2014 [1].", passages)
    assert text == "Qingquan invested 3 million yuan in 2014[1]."
    assert checked[0].corrected_numbers == [("300 million", "3 million")] and citations


def test_a_sentence_must_say_more_than_the_question_and_that_must_be_supported():
    question = "苍南建立了多少个党建联盟？"
    _, citations, checked = verify_answer("苍南建立了党建联盟[1]。", PASSAGES, question=question)
    assert citations == [] and not checked[0].supported  # only restates the question
    _, _, checked = verify_answer("苍南建立了党建联盟，由县长王某某牵头[1]。", PASSAGES, question=question)
    assert not checked[0].supported  # what it adds is in no passage
    _, citations, checked = verify_answer("苍南建立了党建联盟48个[1]。", PASSAGES, question=question)
    assert [c.n for c in citations] == [1] and checked[0].supported
    _, citations, _ = verify_answer("The party secretary of the village is [2].", PASSAGES,
                                    question="Who is the party secretary of the village?")
    assert citations == []


@pytest.mark.parametrize("answer", ["", "。", "[1]"])
def test_empty_answers(answer):
    text, citations, checked = verify_answer(answer, PASSAGES)
    assert citations == [] and checked == []


def test_a_deputy_does_not_vouch_for_the_head():
    from rag.answer.cite import titles_missing

    assert titles_missing("苍南县委组织部部长是陈庆", "苍南县委组织部副部长陈庆介绍") == ["部长"]
    assert titles_missing("苍南县委组织部副部长是陈庆", "苍南县委组织部副部长陈庆介绍") == []
    assert titles_missing("村党委书记叶经佐", "村党委副书记王某，村党委书记叶经佐") == []


def test_digits_are_supported_by_chinese_numerals():
    from rag.answer.cite import lexical_support

    question = "在德清灯塔村成立的“健康共富”党建联盟由几方组成？"
    passage = "六个党支部联手成立了六方“健康共富”党建联盟。"
    assert lexical_support("党建联盟由6方组成。", passage, question) == 1.0
    assert lexical_support("党建联盟由7方组成。", passage, question) == 0.0


def test_sentences_in_the_other_language_are_dropped_when_the_rest_answers():
    from rag.answer.cite import keep_language

    pasted = 'Fanshan has completed 106 projects [1]. The passage states "据统计，该镇已办理实事106件。"[1]'
    assert keep_language(pasted, "en") == "Fanshan has completed 106 projects.[1]"
    assert keep_language("该镇已办理实事106件[1]。", "en") == "该镇已办理实事106件[1]。"  # translated instead
    assert keep_language("该镇已办理实事106件[1]。", "zh") == "该镇已办理实事106件[1]。"
    # A list its own sentence opens is its answer, whatever the items' language; after the list,
    # pasted passage sentences go again.
    listed = 'Taihu uses three initiatives:\n1. “太湖夜读” [1]\n2. “民星进城” [1]\n3. “村村春晚” [1]\nThey help.[1] 该县开展活动。[1]'
    assert keep_language(listed, "en") == 'Taihu uses three initiatives: “太湖夜读”[1] “民星进城”[1] “村村春晚”[1] They help.[1]'


def test_a_rare_character_of_a_name_must_be_supported_too():
    # 䶮 (CJK Extension A) is Chinese like any other character (rag.textnorm.CJK): "刘䶮" is two
    # character pairs the passage must have, not a gap that leaves only "任书记" to check.
    assert lexical_support("刘䶮任书记。", "张三任书记。") == 0.5
    assert lexical_support("刘䶮任书记。", "刘䶮任书记。") == 1.0


@pytest.mark.parametrize("question,passage,answer,bound", [
    # the village's secretary where the town's was asked
    ("东岭镇党委书记叫什么名字？", "东岭镇的石桥村党委书记张建民介绍，水渠已修好。", "东岭镇党委书记张建民[1]。", False),
    ("东岭镇党委书记叫什么名字？", "东岭镇党委书记张建民介绍，水渠已修好。", "东岭镇党委书记张建民[1]。", True),
    # another office of the same village
    ("石桥村的村委会主任是谁？", "石桥村党总支书记王秀英介绍，市场年创收百万元。", "石桥村的村委会主任是王秀英[1]。", False),
    # one of a list of offices, the name after the last
    ("石桥村的村委会主任是谁？", "石桥村党委书记、村委会主任王秀英说，村里变了样。", "石桥村的村委会主任是王秀英[1]。", True),
    # the name before the office
    ("石桥村的村委会主任是谁？", "2013年起，王秀英担任村委会主任。", "石桥村的村委会主任是王秀英[1]。", True),
    # the deputy
    ("东岭镇镇长是谁？", "东岭镇副镇长李国平说，项目已开工。", "东岭镇镇长是李国平[1]。", False),
    # asked in English, the name as printed: the deputy town head is not the town's Party secretary
    ("Who is the Party secretary of Dongling town?", "东岭镇副镇长李国平说，项目已开工。",
     "The Party secretary of Dongling town is 李国平[1].", False),
    ("Who is the Party secretary of Dongling town?", "东岭镇党委书记李国平说，项目已开工。",
     "The Party secretary of Dongling town is 李国平[1].", True),
])
def test_a_name_answers_who_holds_an_office_only_where_the_passage_gives_it_that_office(question, passage, answer,
                                                                                    bound):
    _, citations, checked = verify_answer(answer, [P(passage, "报道", chunk_id="r")], question=question)
    assert checked[0].supported is bound and bool(citations) is bound


def test_the_asked_office_is_read_from_who_questions_only():
    from rag.answer.roles import Role, asked_role
    assert asked_role("大观区区委书记叫什么名字？").title == "委书记" and asked_role("大观区区委书记叫什么名字？").level == "区"
    assert asked_role("石桥村的村委会主任是谁？").title == "村委会主任"
    assert asked_role("挪威养老基金的首席执行官叫什么名字？").title == "首席执行官"
    assert asked_role("石桥村党委书记介绍了什么经验？") is None  # not a who-question
    assert asked_role("是谁修好了水渠？") is None  # no office
    assert asked_role("谁是矾山镇党委书记？") == asked_role("矾山镇党委书记叫什么名字？") == Role("党委书记", "镇")
    assert asked_role("合作社理事长的名字叫什么？").title == "理事长"
    # 叫什么 asks for a thing of the office, not its holder
    assert asked_role("村支部书记牵头成立的合作社叫什么名字？") is None
    assert asked_role("谁介绍了村委会主任的工作经验？") is None  # the office does not end the question
    assert asked_role("商会会长是谁？他还是哪家企业的董事长？").title == "会长"  # 谁 asks in its own clause
    # English: the office as the Chinese title it is printed as, the level from its place.
    assert asked_role("Who is the Party secretary of Shuitou town?") == Role("书记", "镇")
    assert asked_role("Who is the deputy Party secretary of Annan township?") == Role("副书记", "乡")
    assert asked_role("Who is the mayor of Wenzhou city?") == Role("市长", "市")
    assert asked_role("Who is the head of Xiaogucheng village?") is None  # printed as 主任 or 书记: not bound
    assert asked_role("Who visited Xiaogucheng village in 2005?") is None


def test_a_passage_on_another_subject_does_not_vouch_for_a_restated_one_with_its_figure():
    # The figure is in a passage about a luggage maker; the sentence says it is the industry's.
    question = "南湖童装产业一年的产值是多少？"
    passages = [P("今年1~5月，该箱包公司产值达4200多万元，是去年全年的1.5倍。", "箱包企业", chunk_id="x"),
                P("南湖约有童装生产经营主体1.4万家，童装电商企业8000多家。", "童装之都", chunk_id="y")]
    _, citations, checked = verify_answer("南湖童装产业一年的产值是4200多万元[1]。", passages, question=question)
    assert not checked[0].supported and citations == []
    # The same figure, where the passage is about the subject asked.
    passages[0] = P("南湖童装产业一年的产值达4200多万元。", "童装之都", chunk_id="x")
    _, citations, checked = verify_answer("南湖童装产业一年的产值是4200多万元[1]。", passages, question=question)
    assert checked[0].supported and [c.n for c in citations] == [1]


def test_a_caption_is_about_its_photo():
    # "这张照片" restated from the question: a caption does not print "照片", but is about one.
    question = "“红色公交”驶入红色教育基地这张照片是谁拍的？"
    caption = P("党史学习教育“红色公交”驶入红色教育基地。 李士明/摄", "党史学习教育“红色公交”驶入红色教育基地",
                kind="caption")
    _, _, checked = verify_answer("这张照片是李士明/摄[1]。", [caption], question=question)
    assert checked[0].supported
    story = P("党史学习教育“红色公交”驶入红色教育基地。 李士明/摄", "党史学习教育", kind="article")
    _, _, checked = verify_answer("这张照片是李士明/摄[1]。", [story], question=question)
    assert not checked[0].supported


def test_an_english_sentence_whose_figures_the_passage_states_is_kept_at_a_lower_similarity():
    from rag.answer import cite

    class Near:  # every sentence this similar to every other
        def __init__(self, similarity):
            self.similarity = similarity

        def embed_queries(self, texts):
            return __import__("numpy").full((len(texts), 1), 1.0)

        def embed_passages(self, texts, batch_size=32, show_progress=False):
            return __import__("numpy").full((len(texts), 1), self.similarity)

    passages = [P("柯城区村播产业创造税收超4千万元。", "村播", chunk_id="k")]
    similarity = (cite.EMBEDDING_KEEP_FIGURES + cite.EMBEDDING_KEEP) / 2
    question = "How much tax revenue has the live-streaming industry generated?"
    text, _, checked = verify_answer("It has generated over 4,000,000 yuan in tax revenue [1].", passages,
                                     Near(similarity), question=question)
    assert checked[0].supported and checked[0].corrected_numbers == [("4,000,000", "40 million")]
    assert "40 million" in text
    # Without a figure the usual bar holds.
    _, _, checked = verify_answer("It has generated a great deal of tax revenue [1].", passages, Near(similarity),
                                  question=question)
    assert not checked[0].supported


def test_a_marker_inside_a_chinese_list_closes_its_claim():
    assert split_answer("薛晨：27岁 [1] 夏欣怡：19岁 [3]") == [("薛晨：27岁", [1]), ("夏欣怡：19岁", [3])]
    assert split_answer("It was 2016 [3] and the band split [1] later.") == [
        ("It was 2016 and the band split later.", [3, 1])]  # English claims end with a full stop


def test_list_item_numbers_are_no_figures_of_the_answer():
    # Read as figures, the "2" and "3" of a numbered list are missing from the passage.
    assert split_answer("有三项：1. 夜校 [1] 2. 夜访 [1] 3. 夜市 [2]") == [
        ("有三项：夜校", [1]), ("夜访", [1]), ("夜市", [2])]
    assert split_answer("主要有：1、夜校[1]；2、夜访[2]。") == [("主要有：夜校；", [1]), ("夜访。", [2])]
    assert split_answer("（1）夜校[1]（2）夜访[2]") == split_answer("①夜校[1]②夜访[2]") == [("夜校", [1]), ("夜访", [2])]
    assert split_answer("1. Night schools [1]\n2. Night visits [2]") == [("Night schools", [1]), ("Night visits", [2])]
    # A number that ends a sentence, or a decimal, stays.
    assert split_answer("The village has 18. It grew 1.4 times [1].") == [
        ("The village has 18.", []), ("It grew 1.4 times.", [1])]
    assert split_answer("该村有1.4万户[1]。") == [("该村有1.4万户。", [1])]


def test_an_english_answer_giving_a_short_chinese_term_is_no_restatement():
    passages = [P("本届大赛以“元·构”为主题，两岸学生埋头于作品建构。", "实体建构大赛")]
    question = "What is the theme of the tenth cross-Strait student construction contest?"
    _, citations, checked = verify_answer('The theme of the contest is "元·构" [1].', passages, question=question)
    assert not checked[0].restates and citations
    _, _, checked = verify_answer("The theme of the contest is [1].", passages, question=question)
    assert checked[0].restates  # nothing beyond the question


def test_the_glossary_finds_an_english_sentences_words_in_a_chinese_passage():
    passages = [P("真子公主2010年在英国爱丁堡大学留学，2012年在都柏林圣三一学院学习。", "真子公主")]
    question = "Where did Princess Mako study in 2012?"
    sentence = "Princess Mako studied at Trinity College Dublin in 2012."
    glossary = {"dublin": ["都柏林"], "college": ["学院"], "trinity": ["三一"], "studied": ["学习"]}
    assert lexical_support(sentence, passages[0].text, question) == 0.0  # no figure or Chinese to go by
    assert lexical_support(sentence, passages[0].text, question, glossary) == 1.0
    _, citations, checked = verify_answer(sentence, passages, question=question, glossary=glossary)
    assert checked[0].supported and citations
    # Words the passage does not have are evidence against; single characters are no evidence.
    assert lexical_support("She studied at Oxford in 2012.", passages[0].text, question,
                           {"oxford": ["牛津"], "studied": ["学"]}) == 0.0
    # Glossed words never lower the figures' support.
    assert lexical_support("She holds 2012 degrees.", passages[0].text, "", {"holds": ["持有"]}) == 1.0
