"""Two-part questions split into their parts (rag/answer/parts.py)."""

from dataclasses import dataclass

import pytest

from rag.answer.parts import Part, context_passages, sentences_for_parts, split_parts, unanswered


def texts(question):
    return [(p.text, bool(p.context)) for p in split_parts(question)]


def test_a_list_with_fenbie_is_one_part_per_item_with_the_shared_words():
    assert texts("水头镇在老旧小区改造和货运行业分别组建了什么党建联盟？") == [
        ("水头镇在老旧小区改造组建了什么党建联盟？", False), ("水头镇在货运行业组建了什么党建联盟？", False)]
    assert texts("清泉村的猕猴桃和杨梅分别卖了多少钱？") == [("清泉村的猕猴桃卖了多少钱？", False),
                                                ("清泉村的杨梅卖了多少钱？", False)]
    # The last item's noun goes with every item.
    assert texts("东跳村和清泉村的电商直播培训分别办了几期？") == [
        ("东跳村的电商直播培训办了几期？", False), ("清泉村的电商直播培训办了几期？", False)]
    assert texts("平阳县的县委书记和县长分别是谁？") == [("平阳县的县委书记是谁？", False), ("平阳县的县长是谁？", False)]
    # 同 inside 共同 is no preposition ending shared words.
    assert texts("共同富裕示范区和山区26县分别有多少个？") == [("共同富裕示范区有多少个？", False), ("山区26县有多少个？", False)]
    assert texts("怀宁县、太湖县与大观区分别建了多少个农民夜校？") == [
        ("怀宁县建了多少个农民夜校？", False), ("太湖县建了多少个农民夜校？", False),
        ("大观区建了多少个农民夜校？", False)]


def test_a_conjunction_inside_quotation_marks_is_part_of_a_name():
    assert texts("“和食堂”和“电力驿站”分别建在哪里？") == [("“和食堂”建在哪里？", False), ("“电力驿站”建在哪里？", False)]


def test_two_question_sentences_are_two_parts_and_the_second_may_lean_on_the_first():
    parts = split_parts("太湖县依托党群服务中心建了多少个“农民夜校”？大观区又是多少？")
    assert [p.text for p in parts] == ["太湖县依托党群服务中心建了多少个“农民夜校”？", "大观区又是多少？"]
    assert parts[1].context == parts[0].text and parts[1].query.startswith("太湖县")
    assert parts[1].asked().kinds == {"count"}  # "又是多少" asks what the first part asked
    # "A镇…几个？全县一共…？": the county's total leans on the town's question for its noun.
    parts = split_parts("小池镇有几个“农民夜校”？全县一共有多少个？")
    assert [p.text for p in parts] == ["小池镇有几个“农民夜校”？", "全县一共有多少个？"] and parts[1].context
    assert texts("南浔旧馆街道商会会长是谁？他还是哪家企业的董事长？")[1] == ("他还是哪家企业的董事长？", True)
    assert texts("怀宁县开展了多少场党史知识大宣讲？大观区举办了几期乡村振兴专题培训班？") == [
        ("怀宁县开展了多少场党史知识大宣讲？", False), ("大观区举办了几期乡村振兴专题培训班？", False)]


def test_two_clauses_that_each_ask_are_two_parts():
    assert texts("帮昕宏箱包做技改的助企服务员是谁，担任什么职务？") == [
        ("帮昕宏箱包做技改的助企服务员是谁？", False), ("担任什么职务？", True)]
    # The second clause shares the first one's subject, whatever its first word.
    assert texts("灵溪镇在哪个季度办了决赛，评出了几个最佳村社？") == [
        ("灵溪镇在哪个季度办了决赛？", False), ("评出了几个最佳村社？", True)]


def test_english_patterns():
    assert texts("How many party-building alliances had Cangnan set up this year, and how many Party "
                 "organisations did they cover?") == [
        ("How many party-building alliances had Cangnan set up this year?", False),
        ("How many Party organisations did they cover?", True)]
    assert texts("How many villages are grouped together in one of Huaining's joint village Party committees, "
                 "and in Kecheng's Liuhe Gangmeng company?") == [
        ("How many villages are grouped together in one of Huaining's joint village Party committees?", False),
        ("How many villages are grouped together in Kecheng's Liuhe Gangmeng company?", False)]
    assert texts("How many Party members are there in Zhili's children's-clothing sector, compared with "
                 "Xiaogucheng village?") == [
        ("How many Party members are there in Zhili's children's-clothing sector?", False),
        ("How many Party members are there in Xiaogucheng village?", False)]
    assert texts("Which villages built their economy around bayberries and around kiwifruit, respectively?") == [
        ("Which villages built their economy around bayberries?", False),
        ("Which villages built their economy around kiwifruit?", False)]
    assert texts("What did Annan set up for mobile Party members, and how many?")[1] == ("How many?", True)


def test_traditional_questions_are_split_in_simplified():
    assert texts("水頭鎮在老舊小區改造和貨運行業分別組建了什麼黨建聯盟？") == [
        ("水头镇在老旧小区改造组建了什么党建联盟？", False), ("水头镇在货运行业组建了什么党建联盟？", False)]


@pytest.mark.parametrize("question", [
    "两地农商行给东亭和鄞吴的强村公司各授信多少？",  # 各: one figure for both
    "荆城楼宇社区按楼宇划分了多少个网格和微网格？",  # no 分别: answered in one sentence
    "灵溪镇比赛当天，百丈村代表去观摩了哪个村的农贸市场项目？",  # one clause asks
    "What is the relation between Xiaowu town and Dongting township?",
    "How many practical projects had Fanshan town completed and handed over?",
])
def test_single_questions_stay_whole(question):
    assert split_parts(question) == [Part(question)]


def test_answer_sentences_go_to_the_parts_they_name():
    parts = split_parts("怀宁县开展了多少场党史知识大宣讲？大观区举办了几期乡村振兴专题培训班？")
    sentences = ["怀宁县开展了15场党史知识大宣讲。", "大观区举办2期乡村振兴专题培训班。"]
    assert sentences_for_parts(parts, sentences) == [[sentences[0]], [sentences[1]]]
    # A sentence naming neither part goes to the part left without one.
    assert sentences_for_parts(parts, [sentences[0], "共举办2期。"]) == [[sentences[0]], ["共举办2期。"]]
    assert unanswered(parts, ["", ""], sentences) == []
    assert unanswered(parts, ["", ""], sentences[:1]) == [(1, "no support")]
    assert unanswered(parts, ["", "weak evidence"], sentences) == [(1, "weak evidence")]
    # The second part asks for a count: a sentence about it with only money does not answer it.
    assert unanswered(parts, ["", ""], [sentences[0], "大观区乡村振兴专题培训班投入5万元。"]) == [
        (1, "wrong quantity: asked things, given money")]


@dataclass(frozen=True)
class _P:
    chunk_id: str
    source: str
    article_no: int


def test_the_llm_reads_passages_for_every_part_and_at_most_two_of_an_article():
    a1, a2, a3 = (_P(f"a:{i}", "a", 1) for i in range(3))
    b1, c1 = _P("b:1", "b", 2), _P("c:1", "c", 3)
    chosen = context_passages([[a1, a2, a3], [a1, a3, b1, c1]], limit=3)
    assert chosen == [[a1, a2], [b1]]  # a1 once; a3 would be a third of article a
    assert context_passages([[a1], [b1], [c1]], limit=2) == [[a1], [b1], [c1]]  # one per part at least


def test_a_leaning_part_may_be_answered_in_the_sentence_of_the_part_it_leans_on():
    parts = split_parts("In Huaining county's pilot area, what was the average village collective operating income "
                        "in 2021, and how fast did it grow?")
    assert parts[1].text == "How fast did it grow?" and parts[1].asked().kinds == {"percent"}
    both = "In the pilot area the average village collective operating income in 2021 was 44.57万元, which grew by 32%."
    assert unanswered(parts, ["", ""], [both]) == []
    income = "In the pilot area the average village collective operating income in 2021 was 44.57万元."
    assert unanswered(parts, ["", ""], [income]) == [(1, "wrong quantity: asked percent, given money")]


def test_a_part_the_figure_gate_refused_is_answered_by_a_sentence_naming_it_with_a_fitting_figure():
    parts = split_parts("罗曼照明股东大会召开时，公司在任董事几人？在任监事几人？")
    gate = "no figure of the asked kind (people) in the documents"
    both = "罗曼照明股东大会召开时，公司在任董事5人，监事3人。"
    assert unanswered(parts, [gate, ""], [both]) == []
    # Only a sentence naming the refused part can lift its refusal, and only with a figure of its kind.
    assert unanswered(parts, [gate, ""], ["在任监事3人。"]) == [(0, gate)]
    assert unanswered(parts, [gate, ""], ["公司在任董事的任期为3年。", "在任监事3人。"]) == [(0, gate)]
    # A refusal for another reason stands.
    assert unanswered(parts, ["not in the documents: 2023年", ""], [both]) == [(0, "not in the documents: 2023年")]


def test_parts_told_apart_by_one_letter_are_matched_by_it():
    parts = split_parts("快手原来的K序列和M序列分别有几个大档？")
    assert [p.text for p in parts] == ["快手原来的K序列有几个大档？", "快手原来的M序列有几个大档？"]
    # "K序列有5个大档" answers the K part only; the M part is said to be unanswered.
    assert unanswered(parts, ["", ""], ["快手原来的K序列有5个大档。"]) == [(1, "no support")]
    assert unanswered(parts, ["", ""], ["K序列有5个大档。", "M序列有4个大档。"]) == []
