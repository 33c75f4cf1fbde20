"""One-article-per-line dumps (rag.ingest.dumps) and the datelines they open with (rag.ingest.datelines).

The lines are real news-cn lines (/work/shared/corpora/news-cn), bodies shortened.
"""

from __future__ import annotations

import re

import pytest

from rag.errors import CorpusError
from rag.ingest.datelines import outlet_name, read_dateline
from rag.ingest.dumps import YEAR_NOTE, looks_like_dump, read_dump, split_paragraphs

from helpers import SEEDS

BODY = "国家金融监督管理总局发布消息称，7月20日上午，31家省级监管局统一挂牌。"


def read_one(line: str, *others: str):
    return read_dump("\n".join((line, *others)), "news-001.txt")[0]


# One line per stamp form of the news-cn README, as the files print it: (line, date, precision).
@pytest.mark.parametrize("line, date, precision", [
    ("2023-07-27 16:50，正文：7月27日，知名企业家王石晒出了一则徒手攀岩的视频。", "2023-07-27", "day"),
    ("2023-08-16 18:24:57，正文：IT之家 8 月 16 日消息，英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本。",
     "2023-08-16", "day"),
    ("2023-07-26，正文：中国消费者报福州讯（记者张文章）7月25日，福建省厦门市市场监管局发布公告。", "2023-07-26", "day"),
    ("7-20 15:37，正文：中新社多伦多7月20日电 (记者 余瑞冬)在加拿大联邦政府方面批评罢工非法之后。", "--07-20", "month-day"),
    ("07-20 15:29，正文：财经网金融讯\xa0 今日，" + BODY, "--07-20", "month-day"),
    ("23-07-26 22:00，正文：1953年7月27日10时，在板门店，朝鲜停战协定正式签署。", "2023-07-26", "day"),
    ("2023年07月19日，正文：        连日来，湖鄱阳湖水位持续走低，通江水体面积进一步缩小。", "2023-07-19", "day"),
    ("[2023/07/20  16:52]，正文：         中国经济网北京7月20日讯\xa0维海德(301318.SZ)今日收报33.10元。",
     "2023-07-20", "day"),
    ("[ 2023-07-28 16：40 ] ，正文：人民网柏林7月28日电 （记者刘仲华）德国联邦统计局28日公布数据。", "2023-07-28", "day"),
    ("，正文：原标题：【微特稿·时事与军事】阿富汗东南部一酒店爆炸致3名平民死亡【新华社微特稿】阿富汗东南部霍斯特省"
     "首府霍斯特市一家酒店14日发生爆炸。", None, "unknown"),
])
def test_every_readme_stamp_form(line, date, precision):
    article = read_one(line)
    assert (article.date, article.date_precision) == (date, precision)
    assert "正文" not in article.text and "2023" not in article.text[:4]


def test_the_other_prefixes_give_outlet_section_url_and_author():
    url = read_one("http://www.gd.chinanews.com\xa0\xa0\xa0\xa02023年05月22日 10:33\xa0\xa0\xa0\xa0来源：中新网广东，正文："
                   "中新网广东新闻5月21日电 (郭军 朱海翔)5月19日，从化区委统战部组织专题学习调研活动。")
    assert (url.url, url.paper, url.date) == ("http://www.gd.chinanews.com", "中新网广东", "2023-05-22")
    crumb = read_one("华夏经纬网 > 新闻 > 大陆新闻 > 社会综合\xa0\xa0\xa0\xa0\xa0\xa02023-07-26 18:00:49  ，正文："
                     "低碳节能,供暖为先!在全球节能减排的背景下,热泵供暖行业正在发生深刻变革。")
    assert (crumb.paper, crumb.section, crumb.date) == ("华夏经纬网", "社会综合", "2023-07-26")
    source = read_one("来源：央视网  |  2023年07月20日 08:57:43，正文：            央视网消息：据商务部网站消息，"
                      "2023年上半年，我国网络零售市场规模总体呈稳步增长态势。")
    assert (source.paper, source.date) == ("央视网", "2023-07-20")
    author = read_one("记者：韩轩，正文：7月23日晚，第十八届北京舞蹈大赛颁奖典礼在北京民族剧院上演。")
    assert (author.author, author.paper, author.date) == ("韩轩", None, None)
    ip = read_one("2023年07月20日 18:14:59 来自北京市，正文：【环球网报道 见习记者 黄泽佳】据俄罗斯“军事评论”网站20日报道。")
    assert (ip.paper, ip.date, ip.author) == ("环球网", "2023-07-20", "黄泽佳")  # 来自北京市 is no outlet
    for prefix, date in (("时间：2023-07-28 07:58:00", "2023-07-28"), ("发布时间：2023-08-02 13:13:17", "2023-08-02"),
                         ("发表时间：2023-07-25 06:34", "2023-07-25"), ("202307/1915:55:52", "2023-07-19"),
                         ("08/05", "--08-05"), ("[\t\t07/19\t\t]", "--07-19")):
        assert read_one(f"{prefix}，正文：{BODY}").date == date


def test_the_prefix_source_wins_over_the_dateline():
    article = read_one("来源：中国青年报客户端，正文：          中国青年报客户端北京7月19日电（中青报·中青网记者 高蕾）"
                       "记者从水利部获悉，预计7月20-21日，海河流域将有一次强降雨过程。")
    assert article.paper == "中国青年报客户端"
    mixed = read_one("来源：安徽日报  |  2023年07月20日 09:51:31，正文：    中新网合肥7月19日电 (记者 吴兰)" + BODY)
    assert mixed.paper == "安徽日报"


def test_a_year_less_stamp_takes_the_year_the_file_agrees_on():
    articles = read_dump("7-20 15:37，正文：中新社多伦多7月20日电 (记者 余瑞冬)在加拿大联邦政府方面批评罢工非法之后。\n"
                         "2023-07-27 16:50，正文：7月27日，知名企业家王石晒出了一则徒手攀岩的视频。\n"
                         "2023年07月19日，正文：连日来，湖鄱阳湖水位持续走低。", "news-003.txt")
    assert (articles[0].date, articles[0].date_precision, articles[0].date_note) == ("2023-07-20", "day", YEAR_NOTE)
    assert articles[1].date_note is None


def test_a_year_less_stamp_stays_month_day_when_the_file_spans_years():
    articles = read_dump("12-31 15:37，正文：" + BODY + "\n2022-12-30 16:50，正文：" + BODY +
                         "\n2023-01-02，正文：" + BODY, "spans.txt")
    assert (articles[0].date, articles[0].date_precision, articles[0].date_note) == ("--12-31", "month-day", None)
    alone = read_dump("07-20 15:29，正文：" + BODY, "alone.txt")[0]
    assert (alone.date, alone.date_precision) == ("--07-20", "month-day")


def test_a_line_without_a_stamp_is_still_one_article_and_takes_only_its_datelines_month_day():
    unstamped = ("据全国总工会保障工作部部长张波24日介绍，全国总工会机关将组成19个慰问团，于2016年元旦后分赴全国各地。"
                 "   今年“送温暖”工作将重点关注“四类重点行业、地区”和“四类重点人群”。" * 3)
    wire = "中新网8月6日电 据《今日印度》援引印度警方消息称，当地时间6日晚，印度一辆客运大巴坠入河中。" * 3
    articles = read_dump("2023-08-16 18:24:57，正文：" + BODY + "\n" + unstamped + "\n" + wire, "news-032.txt")
    assert [a.record for a in articles] == [1, 2, 3]
    assert (articles[1].date, articles[1].date_precision) == (None, "unknown")
    # The dateline's month-day, never a year taken from the file's 2023 stamps.
    assert (articles[2].date, articles[2].date_note, articles[2].paper) == ("--08-06", "from the dateline", "中新网")


def test_a_dateline_after_a_caption_or_a_run_in_headline_names_the_outlet_not_the_headline():
    caption = read_one("，正文：图为火灾现场。内蒙古森林消防总队供图 中新网呼伦贝尔8月12日电 (张林)近日，呼伦贝尔发生火灾。")
    assert (caption.paper, caption.date) == ("中新网", "--08-12")
    run_in = read_one("，正文：两部门印发紧急通知，开展农业生产救灾工作！新华社北京7月31日电为切实抓好农业生产。")
    assert (run_in.paper, run_in.headline) == ("新华社", "两部门印发紧急通知，开展农业生产救灾工作")
    quoted = read_one("，正文：记者获悉，据新华社北京7月31日电，农业农村部部署救灾。")
    assert quoted.paper is None  # "据…电" inside a sentence quotes the wire


def test_articles_are_numbered_and_keep_their_line_numbers():
    articles = read_dump("2023-07-26，正文：" + BODY + "\n\n\n2023-07-27，正文：" + BODY + "\n", "news-009.txt")
    assert [(a.number, a.record, a.kind, a.source) for a in articles] == [
        (1, 1, "article", "news-009.txt"), (2, 4, "article", "news-009.txt")]


# Datelines: (body opening, outlet, place).
@pytest.mark.parametrize("body, outlet, place", [
    ("人民网柏林7月28日电 （记者刘仲华）德国联邦统计局28日公布数据", "人民网", "柏林"),
    ("中新网约翰内斯堡8月10日电 (记者 王曦)南非", "中新网", "约翰内斯堡"),
    ("IT之家 8 月 16 日消息，英特尔已经", "IT之家", None),
    ("中新社多伦多7月20日电 (记者 余瑞冬)在", "中新社", "多伦多"),
    ("新华社北京7月25日电（记者周圆 王聿昊）应急管理部", "新华社", "北京"),
    ("中国消费者报福州讯（记者张文章）7月25日", "中国消费者报", "福州"),
    ("央视网消息：据商务部网站消息", "央视网", None),
    ("参考消息网8月16日报道 据《今日美国报》网站", "参考消息网", None),
    ("中国经济网北京7月20日讯 维海德", "中国经济网", "北京"),
    ("四川新闻网-首屏新闻成都7月26日讯（记者 夏婉琳 张宇 摄影报道）7月26日", "四川新闻网", "成都"),
    ("羊城晚报讯 记者王漫琪、实习生方咏思报道", "羊城晚报", None),
    ("【环球网报道 见习记者 黄泽佳】据俄罗斯", "环球网", None),
    ("国际在线报道(记者 赵银平):拥有2000多年历史的喀什", "国际在线", None),
    ("科技日报成都7月26日电(陈科  记者 何亮)26日", "科技日报", "成都"),
    ("正义网北京7月27日电(记者单鸽)今天", "正义网", "北京"),
    ("财经网金融讯  今日，", "财经网", None),
    ("中新网广东新闻5月21日电 (郭军 朱海翔)5月19日", "中新网", None),
    ("荆楚网（湖北日报网）讯（通讯员 陈顺）自7月以来", "荆楚网", None),
    ("极目新闻记者 周萍英通讯员 王某", "极目新闻", None),
    ("座谈会现场深圳新闻网2023年8月2日讯（记者 凌安儿 通讯员 梁若擎）近日", "深圳新闻网", None),
    ("本文转自：人民网人民网北京8月1日电 (记者)", "人民网", "北京"),
    ("来源：参考消息网据路透社7月26日报道，", "参考消息网", None),
    ("据新华社电 英国1566家移动端应用程序开发商", "新华社", None),
    ("红星资本局8月1日消息，", "红星资本局", None),  # no outlet ending: the known list
])
def test_datelines_give_the_outlet_and_place(body, outlet, place):
    dateline = read_dateline(body)
    assert (dateline.outlet, dateline.place) == (outlet, place)


def test_a_dateline_gives_month_day_byline_and_where_it_ends():
    body = "新华社北京7月25日电（记者周圆 王聿昊）应急管理部副部长王道席25日表示"
    dateline = read_dateline(body)
    assert (dateline.month, dateline.day, dateline.byline) == (7, 25, "记者周圆 王聿昊")
    assert body[dateline.end:].startswith("应急管理部")
    assert read_dateline("深圳新闻网2023年7月26日讯（记者）").year == 2023
    assert read_dateline("新浪科技讯 北京时间").section == "科技"


def test_the_paper_itself_names_no_outlet():
    own = read_dateline("本报讯（通讯员 宗禾 记者 朱胜利）市委书记")
    assert own is not None and own.outlet is None
    assert read_dateline("本报北京8月6日电\xa0\xa0（记者王观）国家税务总局").place == "北京"


@pytest.mark.parametrize("body", [
    "7月27日，知名企业家王石晒出了一则徒手攀岩的视频",  # a date, no outlet
    "据英国《都市报》7月24日报道，天文学家",  # another outlet quoted
    "据法新社报道，乍得过渡总统",
    "国家统计局7月20日消息，",  # an agency, not an outlet
    "外交部发言人毛宁7月25日说",
    "记者3日从交通运输部获悉",
    "当地时间25日，国际货币基金组织",
    "近日，有消息称",
    "央视新闻报道，",  # a sentence about a report
    "中国国际航空公司纽约营业部总经理周跃龙告诉新华社记者，国航27日",
    "习近平指出，中沙建交26年来",
    "根据巴勒斯坦官方通讯社消息，当地时间",
    "美国地质勘探局地震信息网发布的消息，",
    "活动现场 中青报·中青网记者 梁璇 摄  中国青年报客户端北京8月1日电",  # a photo credit
    "客户端记者 常青 记者从国铁济南局官方微博获悉",  # a bare ending is no outlet
    "来源：网络综合 ",  # a compilation
    "由中央电视台、腾讯视频、新丽电视出品",
])
def test_bodies_that_open_otherwise_have_no_dateline(body):
    found = read_dateline(body)
    assert found is None or found.outlet is None and found.place is None and found.month is None


def test_what_ran_into_a_dateline_is_left_out():
    assert read_dateline("麻城特色节目展演四川在线记者 吴梦琳 肖姗姗").outlet == "四川在线"  # a caption
    assert read_dateline("丛雨萌 四川在线记者 李婷快来").outlet == "四川在线"  # a photographer
    assert read_dateline("视觉中国供图中国青年报客户端成都7月30日电（中青报）").outlet == "中国青年报客户端"
    run_in = read_dateline("山东建立省政府政策例行吹风会机制本报济南8月9日电 （记者肖家鑫）日前")
    assert (run_in.outlet, run_in.place, run_in.day) == (None, "济南", 9)  # a headline, then the paper's own
    assert read_dateline("来源：台海网厦门大学夜景 资料图台海网8月5日讯").outlet == "台海网"
    assert read_dateline("中国经济导报中国发展网讯 苗锋 记者郭建军报道").outlet == "中国经济导报"
    assert read_dateline("（福克斯新闻报道截图）海外网8月10日电") is None  # a caption in brackets
    assert read_dateline("澎湃新闻从人社部获悉，") is None
    assert read_dateline("江南都市报讯 黄雅、全媒体记者范俊杰报道").outlet == "江南都市报"  # not 南都
    assert read_dateline("来源：每日经济新闻每经编辑 叶峰").outlet == "每日经济新闻"
    assert read_dateline("本文来源：时代财经 作者：何铭亮 来源：图虫创意").outlet == "时代财经"


def test_outlet_labels_are_tidied():
    assert outlet_name("光明网-《光明日报》") == "光明网"
    assert outlet_name("新海南客户端、南海网") == "新海南客户端"
    assert outlet_name("椰网/海拔新闻") == "椰网"
    assert outlet_name("  中国青年报客户端  ") == "中国青年报客户端"


def test_an_original_headline_is_the_pages():
    spaced = read_one("2023-07-25，正文：原标题：中国官方：加大对“黄牛”、第三方平台违规囤票的打击力度             "
                      "       中新社北京7月25日电 (记者 刘文文)为提升暑期旅游景区开放管理水平，中国文化和旅游部25日发布通知。")
    assert (spaced.headline, spaced.headline_source) == ("中国官方：加大对“黄牛”、第三方平台违规囤票的打击力度", "page")
    assert (spaced.paper, spaced.author) == ("中新社", "刘文文")
    assert spaced.paragraphs[0].startswith("中新社北京7月25日电")
    run_in = read_one("，正文：原标题：今年前7个月南京外贸进出口3384.3亿元扬子晚报网8月14日讯（通讯员 张成 记者 薛玲） "
                      "金陵海关最新统计数据显示，今年前7个月，南京市外贸进出口总值3384.3亿元。")
    assert (run_in.headline, run_in.paper) == ("今年前7个月南京外贸进出口3384.3亿元", "扬子晚报网")
    dated = read_one("，正文：原标题：格科微：副总裁暨核心技术人员离职2023年8月14日，格科微于近日公告，公司副总裁离职。")
    assert dated.headline == "格科微：副总裁暨核心技术人员离职"
    bracket = read_one("2023-07-24 20:58:26，正文：     （原标题：云南一直肠癌患者手术失败死亡：尸检称非直肠癌，医院不认可 ）"
                       "     7月24日，澎湃新闻记者获悉此事。")
    assert (bracket.headline, bracket.headline_source) == ("云南一直肠癌患者手术失败死亡：尸检称非直肠癌，医院不认可", "page")


def test_a_run_in_headline_whose_end_cannot_be_told_is_a_lead():
    article = read_one("，正文：原标题：施罗德：随着美国经济即将衰退 美债将反弹随着美国经济坚挺，对长期美国国债的押注事与愿违。")
    assert article.headline_source == "lead"
    assert article.headline.startswith("施罗德：随着美国经济即将衰退")


def test_lead_headlines_skip_the_dateline_and_come_from_their_own_line():
    lines = ["2023-08-16 18:24:57，正文：IT之家 8 月 16 日消息，英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本。",
             "2023-08-16，正文：原标题：英特尔发布 XeSS 1.2       IT之家 8 月 16 日消息，英特尔更新了 SDK。",
             "7-20 15:37，正文：中新社多伦多7月20日电 (记者 余瑞冬)在加拿大联邦政府方面批评罢工非法之后，工会撤销通知。"]
    first, second, third = read_dump("\n".join(lines), "news-001.txt")
    assert (first.headline, first.headline_source) == ("英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本", "lead")
    assert second.headline == "英特尔发布 XeSS 1.2"
    assert third.headline.startswith("在加拿大联邦政府方面批评罢工非法之后")
    assert first.headline != second.headline  # a neighbour's printed headline is never taken


def test_paragraphs_break_at_the_dumps_runs_of_spaces_after_sentence_ends():
    body = "财经网金融讯  今日，总局发布消息。  目前，31家省级监管局均已挂牌。   郑爽 摄    三峡船闸管理处工作人员赠送纪念牌。"
    assert split_paragraphs(body) == ["财经网金融讯 今日，总局发布消息。", "目前，31家省级监管局均已挂牌。",
                                      "郑爽 摄", "三峡船闸管理处工作人员赠送纪念牌。"]
    long = "。".join(f"第{i}句话说了一些事情" for i in range(60)) + "。"
    pieces = split_paragraphs(long)
    assert len(pieces) > 1 and all(len(p) <= 300 for p in pieces) and "".join(pieces) == long


def test_looks_like_dump_reads_a_dump_and_nothing_else():
    dump = "\n".join(["2023-07-26，正文：" + BODY, "7-20 15:37，正文：" + BODY, "，正文：原标题：" + BODY] * 20)
    assert looks_like_dump(dump)
    prose = "连日来，湖鄱阳湖水位持续走低。\n通江水体面积进一步缩小，\n截至7月19日8时，鄱阳湖都昌站水位下降。\n"
    assert not looks_like_dump(prose)
    assert not looks_like_dump("")


@pytest.mark.parametrize("page", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_no_seed_page_looks_like_a_dump_and_a_forced_dump_on_it_says_what_it_expects(page):
    text = page.read_text(encoding="utf-8")
    assert not looks_like_dump(text)
    with pytest.raises(CorpusError) as error:
        read_dump(text, page.name)
    message = str(error.value)
    assert "`<date stamp>，正文：<text>`" in message and "rag index" in message
    fitting, total = map(int, re.search(r"(\d+) of (\d+) non-empty lines fit", message).groups())
    assert total == len([line for line in text.split("\n") if line.strip()]) and fitting * 2 < total


def test_a_dump_without_stamps_is_detected_by_its_whole_article_lines():
    """news-cn's news-033 has no stamps: one long article per line, no blank line between."""
    line = "近日，困境重重的火箭队在主场迎来联盟垫底的费城76人，两队都急需一场胜利来扭转颓势。" * 12
    assert looks_like_dump("\n".join([line] * 30))
    assert not looks_like_dump("\n".join([line] * 5))  # one article of a few long paragraphs
    assert not looks_like_dump("\n\n".join([line] * 30))  # paragraphs separated by blank lines
