"""The asked quantity (rag/answer/asked.py): what kind of number a question wants, and whether an
answer's figures are of it. Sentences are the seed pages' own, or close to them."""

import pytest

from rag.answer.asked import asked_quantity, check_figures, kind_of, passages_lack
from rag.answer.quantities import quantities

# (question, kinds it asks for, a sentence giving that kind, a sentence giving another kind)
CASES = [
    ("水头镇建设安居小区“和食堂”投入了多少资金？", {"money"},
     "水头镇投入近70万元，租借安居小区闲置公共场所建设和食堂。", "和食堂建了30天就开放了。"),
    ("永乐村为完善杨梅果园基础设施先后投了多少钱？", {"money"},
     "永乐村先后投入300万元完善果园基础建设。", "该村目前共种植丁岙杨梅1200多亩。"),
    ("清泉村2008年刚建成时聚集了多少户？", {"households"},
     "2008年，这个刚建成的移民村汇聚了1000多户。", "2008年，这个刚建成的移民村汇聚了4211人。"),
    ("首批“浙江省担当作为好干部”表彰了多少人？", {"people"},
     "首批“浙江省担当作为好干部”表彰了100名。", "首批好干部的评选历时3个月。"),
    ("永乐村现在种了多少亩丁岙杨梅？", {"area"},
     "该村目前共种植丁岙杨梅1200多亩。", "永乐村先后投入300万元完善果园基础建设。"),
    ("余杭区小古城村的村域面积是多少？", {"area"}, "小古城村村域面积12平方公里。", "小古城村去年集体经济收入达996万元。"),
    ("怀宁县推行村级联合党委以来创办了多少家股份制公司？", {"count"},
     "创办股份制公司24个。", "试点区种植蓝莓7566亩。"),
    ("安吉县的“流动药车”上备有多少种常用药？", {"things"}, "流动药车上备有30余种常用药。", "流动药车每周出车2天。"),
    # A measure word for things is no head count (a generic 个 may be: "3个人").
    ("大观区培训了多少名村党组织书记？", {"people"}, "培训村党组织书记100余人。", "举办乡村振兴专题培训班2期。"),
    ("无药店的行政村能多少小时供药？", {"time"}, "实现全县无药店行政村24小时不间断供药售药。", "全县共有24个无药店行政村。"),
    ("善琎镇湖羊养殖基地的年收益，有多大比例要分给村集体？", {"percent"},
     "每年收益的30%分配到村集体和低收入农户。", "每年收益约50万元。"),
    ("吴兴区这次政企恳谈会是第几期？", {"ordinal"}, "吴兴区第二期亲清直通车·政企恳谈会。", "恳谈会上有8位企业家代表。"),
    ("水头镇安居小区和食堂是几月几日迎来第一批老人的？", {"date"},
     "6月20日中午，水头镇安居小区和食堂便迎来了第一批前来吃午饭的老人。", "和食堂投入近70万元。"),
    ("林国荣是从哪一年起担任小古城村党委书记的？", {"year"}, "林国荣2013年起担任村党委书记。", "小古城村村域面积12平方公里。"),
    ("新联村所在的朝阳山海拔大约多高？", {"length"}, "在海拔500多米的朝阳山上，农旅经济发展势头良好。", "茶园面积达800亩。"),
    ("How much did Qingquan village invest in 2014 to put up its five-storey building?", {"money"},
     "Qingquan village invested 3 million yuan in 2014.", "The building was finished in 2014 after 200 days."),
    ("How many households did Huaining's joint village Party committees help get rich?", {"households"},
     "They helped 3,659 households get rich.", "They helped 4,211 people get rich."),
    ("What percentage of the yearly income goes to the village collective?", {"percent"},
     "30% goes to the village collective.", "The base earns 500,000 yuan a year."),
]


@pytest.mark.parametrize("question,kinds,right,wrong", CASES, ids=[c[0][:12] for c in CASES])
def test_each_kind_takes_its_own_figures_and_not_another_kinds(question, kinds, right, wrong):
    asked = asked_quantity(question)
    assert asked is not None and kinds <= asked.kinds, asked
    assert check_figures(asked, [right], question) == ""
    assert check_figures(asked, [wrong], question).startswith("wrong quantity"), wrong


def test_people_and_households_do_not_fit_each_other_but_farmers_may_be_either():
    asked = asked_quantity("清泉村刚建成时汇聚了多少人？")
    assert check_figures(asked, ["移民村汇聚了1000多户。"], "清泉村刚建成时汇聚了多少人？").startswith("wrong")
    # "多少农户" is answered in 户 or as a head count ("70多名农户", the seed's own words).
    question = "甘茶自然村的农田水渠修好以后，解决了多少农户的灌溉难题？"
    asked = asked_quantity(question)
    assert check_figures(asked, ["解决了70多名农户的灌溉难题。"], question) == ""
    assert check_figures(asked, ["解决了30户农户的灌溉难题。"], question) == ""
    assert check_figures(asked, ["水渠投入20万元。"], question).startswith("wrong")


def test_a_number_question_answered_only_with_its_own_numbers_gets_no_figure():
    question = "浙江2020年村（社区）组织换届后，“一肩挑”比例提高到了多少？"
    asked = asked_quantity(question)
    assert check_figures(asked, ["2020年村社组织换届后，“一肩挑”比例大幅提高。"], question) == "no figure"
    assert check_figures(asked, ["2020年换届后，“一肩挑”比例提高到98.43%。"], question) == ""
    # "统一", "一肩挑": a 一 inside a word is no number.
    assert check_figures(asked, ["换届统一进行，实行一肩挑。"], question) == "no figure"


def test_comparisons_may_be_answered_with_a_percentage():
    question = "新联村的龙头茶企收购签约茶农的鲜叶时，价格比市场价高出多少？"
    assert check_figures(asked_quantity(question), ["价格比市场价高出20%以上。"], question) == ""


def test_figures_of_unknown_kind_fit_any_question():
    question = "在德清灯塔村成立的“健康共富”党建联盟由几方组成？"
    assert check_figures(asked_quantity(question), ["党建联盟由6方组成。"], question) == ""
    question = "How many party-building alliances had Cangnan county set up this year?"
    assert check_figures(asked_quantity(question), ["Cangnan set up 48 alliances."], question) == ""
    assert check_figures(asked_quantity(question), ["Cangnan set up five alliances."], question) == ""


def test_what_asks_for_no_number():
    assert asked_quantity("矾山镇三合新村的村党委书记是谁？") is None
    assert asked_quantity("这几版报道里提到的两个跨省党建联建，分别是哪两省之间？") is None  # 这几: "these"
    assert asked_quantity("党建联盟发挥了多大作用？") is None
    assert asked_quantity("Who is the Party secretary of Qingquan village?") is None
    # A number, but of no clear kind: held to giving one.
    assert asked_quantity("昕宏箱包生产线技改后，年产量从多少提高到多少？").kinds == frozenset()


def test_traditional_questions_are_read_in_simplified():
    assert asked_quantity("永樂村為完善楊梅果園基礎設施先後投了多少錢？").kinds == {"money"}
    assert asked_quantity("怀宁縣村級聯合黨委建設帶動了多少戶農戶致富？").kinds == {"households"}


def test_kinds_of_figures():
    def kinds(text):  # in no particular order: digits are read before numerals and words
        return sorted((kind_of(q) for q in quantities(text, numerals=True, words=True)), key=str)

    assert kinds("投入近70万元，试运行两个月，访谈4.2万人次") == ["money", "people", "time"]
    assert kinds("2021年以来办了3年，6月20日开放") == ["date", "date", "time", "year"]
    assert kinds("追溯到1896年的雅典奥运会，已有120年") == ["time", "year"]
    assert kinds("12平方公里、500多米、2,500 square meters、3个百分点") == ["area", "area", "length", "percent"]
    assert kinds("第三期、6方、3 million yuan、four hours") == [None, "money", "ordinal", "time"]


def test_the_gate_refuses_only_when_no_passage_has_a_figure_of_the_asked_kind():
    money = asked_quantity("水头镇安居小区“和食堂”一顿午饭收老人多少钱？")
    assert passages_lack(money, ["向腾龙社区及周边社区70周岁以上老人开放。", "服务老人200多人次。"])
    assert not passages_lack(money, ["水头镇投入近70万元建设和食堂。"])
    assert not passages_lack(money, ["项目总投资300万。"])  # an amount without its unit may be money
    assert not passages_lack(asked_quantity("昕宏箱包年产量从多少提高到多少？"), ["品质大幅度改善。"])  # no kind
    households = asked_quantity("庆元县安南乡有多少户？")
    assert passages_lack(households, ["安南乡吸收福建籍员工近200名。"])
    assert not passages_lack(households, ["带动 3659 户农户致富。"])


def test_shares_in_words_and_ratios_answer_a_share():
    question = "善琎镇湖羊养殖基地的收益有多大比例分给了村集体？"
    asked = asked_quantity(question)
    assert check_figures(asked, ["收益的一半分给了村集体。"], question) == ""
    assert check_figures(asked, ["分红比上年增长了2倍。"], question) == ""
    assert not passages_lack(asked, ["湖羊养殖基地收益的一半分给村集体。"])
    # An order may be in words ("首届"): the gate leaves it to the LLM.
    assert not passages_lack(asked_quantity("这是第几届党建推进会？"), ["首届皖浙毗邻党建推进会召开。"])


@pytest.mark.parametrize("question,kinds", [
    ("小古城村去年的集体经济收入是多少？", {"money"}),  # the noun before 多少
    ("林国荣担任村党委书记多少年了？", {"time"}),  # a span of years, not a year
    ("这个项目投入使用后能服务多少？", set()),  # 投入使用 is no money
    ("How many million yuan did the village earn?", {"money"}),
    ("How many Party-member volunteers did Shuitou mobilise?", {"people"}),
])
def test_kinds_read_from_the_question(question, kinds):
    assert asked_quantity(question).kinds == kinds


def test_a_chinese_figure_without_a_measure_word_answers_an_amount_or_a_count_only():
    question = "村播产业帮助多少户家庭增收？"
    asked = asked_quantity(question)
    # "12亿" (no unit) and 3200余名 (people) do not give households.
    assert check_figures(asked, ["村播产业累计销售额超12亿，帮助3200余名劳动力就业增收。"], question).startswith("wrong")
    assert check_figures(asked, ["村播产业帮助1200户家庭增收。"], question) == ""
    question = "村播产业累计销售额是多少？"
    assert check_figures(asked_quantity(question), ["累计销售额超12亿。"], question) == ""  # money may drop 元
    # In English units are words the lists do not know: an unknown kind still fits.
    question = "How many people did the industry employ?"
    assert check_figures(asked_quantity(question), ["It employed 3,200 laborers."], question) == ""


def test_a_loss_is_money_and_a_toll_is_not_one():
    question = "这场冲突造成了多少财产损失？"
    asked = asked_quantity(question)
    assert asked.kinds == {"money"}
    assert check_figures(asked, ["冲突造成了至少6人死亡、30多人受伤。"], question).startswith("wrong")
    assert check_figures(asked, ["冲突造成财产损失约300万元。"], question) == ""


def test_a_numeral_inside_a_place_name_is_no_figure_of_the_question():
    question = "8月18日四川内江市发生了几级地震？"  # 四 of 四川 is not the number 4
    assert check_figures(asked_quantity(question), ["8月18日四川内江市发生了4.0级地震。"], question) == ""
    question = "三亚市去年接待了多少游客？"
    assert check_figures(asked_quantity(question), ["三亚市去年接待游客3万人次。"], question) == ""


def test_passages_with_a_figure_of_the_asked_kind_are_read_first():
    from dataclasses import dataclass

    from rag.answer.asked import fitting_first

    @dataclass
    class P:
        text: str
        heading: str = ""

    passages = [P("药车上携带常用药品30余种。"), P("实现24小时不间断供药。"), P("服务群众达5000余人次。"), P("满意率达99.5%。")]
    asked = asked_quantity("送药项目至今服务群众多少人次？")
    ranked = fitting_first(asked, passages, reads=2)  # the LLM reads two, neither with a head count
    assert [p.text[:4] for p in ranked] == ["服务群众", "药车上携", "实现24", "满意率达"]
    # Where one the LLM reads already has a head count, the search's order stays.
    assert fitting_first(asked, passages, reads=3) == passages
    assert fitting_first(asked, passages[2:] + passages[:2], reads=1) == passages[2:] + passages[:2]
    # A count of things is just what a question for a count asks; a figure with no unit may be.
    books = [P("夜间借阅的读者已超5000。"), P("馆藏图书8000册。")]
    assert [p.text[:2] for p in fitting_first(asked_quantity("How many books does the library hold?"), books, 1)] == [
        "馆藏", "夜间"]
    # Nothing moves for a question of no definite kind, or for none.
    assert fitting_first(asked_quantity("这个项目有多大？"), passages, 3) == passages
    assert fitting_first(None, passages, 3) == passages


def test_the_models_own_figure_for_what_was_asked_is_no_answer_beside_supported_sentences():
    question = "怀宁县一共组建了多少个村级联合党委？"
    asked = asked_quantity(question)
    supported = ["3-5个村党组织组建一个村级联合党委，创办股份制公司24个。"]
    guessed = "怀宁县一共组建了14个村级联合党委。"  # 14 is in no passage: the sentence is unsupported
    assert check_figures(asked, supported, question, [guessed]) == "unverified figure: 14个"
    assert check_figures(asked, supported, question) == ""  # as before: the supported figures fit
    # A supported figure said again, or an unsupported figure of another kind, is no guess at it.
    assert check_figures(asked, supported, question, ["共创办了24个股份制公司。"]) == ""
    assert check_figures(asked, supported, question, ["这项工作始于2019年。"]) == ""


@pytest.mark.parametrize("span", ["4个多小时", "两个多月", "3个半小时", "一个多星期"])
def test_a_span_with_more_or_half_before_its_unit_is_a_span_not_a_count(span):
    question = "新厂房从开工到投产用了多长时间？"
    asked = asked_quantity(question)
    assert check_figures(asked, [f"新厂房从开工到投产只用了{span}。"], question) == ""
    assert [kind_of(q) for q in quantities(span, numerals=True)] == ["time"]
    # 多 after the 个 of a count keeps it a count.
    assert check_figures(asked, ["新厂房引来了20多个项目。"], question).startswith("wrong quantity")


def test_a_when_question_naming_several_things_asks_for_no_count():
    assert asked_quantity("镇里新建的几个党建联盟是什么时候成立的？") is None
    assert asked_quantity("几个村何时完成了改造？") is None
    # 多少 is never a mere determiner: a when-word beside it leaves the count asked.
    assert asked_quantity("截至什么时候，全村共有多少户？").kinds >= {"households"}
    assert asked_quantity("宜山镇成立了几个党建联盟？").kinds == {"count"}


def test_a_figure_of_the_questions_value_but_another_kind_is_an_answer():
    question = "今年4月发布招募令后，用了多长时间就集结起两千多名志愿者？"
    asked = asked_quantity(question)
    assert check_figures(asked, ["短短4个多小时就集结起来了。"], question) == ""  # 4 hours, not April
    assert check_figures(asked, ["今年4月发布了招募令。"], question) == "no figure"  # the question's own April
    question = "2020年该村的集体经济收入提高到了多少？"
    assert check_figures(asked_quantity(question), ["2020年，该村收入提高了。"], question) == "no figure"
