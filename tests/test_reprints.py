"""Reprint groups (rag.ingest.reprints) on shortened real articles from news-cn: copies grouped,
different stories kept apart despite shared boilerplate or a shared template, no chaining, stable
ids, and the earliest copy."""

from __future__ import annotations

import pytest

from rag.ingest.article import Article
from rag.ingest.reprints import (THRESHOLD, ReprintPair, cluster, earliest, group_id, group_reprints,
                                 score_pairs)

# news-011.txt:458 and news-031.txt:623 (海外网, the same wire copy; the second re-headlined).
GHOST_BABIES = ("据海外网7月25日电 据韩联社25日报道，韩国警察厅国家侦查本部24日发布全国“幽灵婴儿”案最新侦查结果，"
                "截至21日，发现255名未办理出生登记的孩子生死不明。18日起，韩国政府针对2015年至2022年期间出生但未办理"
                "出生登记的2123名儿童进行有关下落、生死情况等调查，发现249名儿童因病或因犯罪死亡。")
GHOST_BABIES_REPRINT = "韩国公布\"幽灵婴儿\"最新侦查结果  " + GHOST_BABIES.replace("。 ", "。  ") + "返回搜狐，查看更多 责任编辑："
# news-001.txt:1938 and news-002.txt:192: one story, the second lightly edited (dates and links reworded).
SEAT = ("近日，有网友爆料在乘坐高铁时发现有铁路职工持工作证占用商务座还脱掉鞋袜，车厢内臭味弥漫此事引发社会关注。"
        "8月15日，广铁集团在官方微博上发布情况说明并道歉，表示对当事职工进行了批评教育。最新消息↓↓↓昨晚（8月17日）"
        "广州铁路官方微博再次发布关于此事的处理结果通报通报全文如下：针对近期网传“铁路职工占用G6097次列车商务座”一事，"
        "广铁集团迅速组织力量进行了调查核实。经查，2023年8月14日运行的G6097次列车1号商务座车厢定员5人。")
SEAT_EDITED = ("近日，有网友爆料在乘坐高铁G6097次列车时，有铁路职工持工作证占用商务座还脱掉鞋袜，车厢内臭味弥漫。此事引发社会"
               "关注。8月15日，广铁集团在官方微博上发布情况说明并道歉，表示对当事职工进行了批评教育。8月17日晚，广州铁路官方"
               "微博发布关于此事的处理结果通报。通报全文如下：针对近期网传“铁路职工占用G6097次列车商务座”一事，广铁集团迅速"
               "组织力量进行了调查核实。经查，2023年8月14日运行的G6097次列车1号商务座车厢定员5人。")
# news-016.txt:323 and news-018.txt:1348: one template, two days' figures, two different reports.
HK_PROFILE = "综合环保集团有限公司是一家主要从事销售回收纸及材料的投资控股公司。该公司通过四个分部运营业务。"
HK_CLOSE_1 = ("截至2023年8月1日收盘，综合环保集团(00923.HK)报收于0.04港元，下跌2.63%，换手率0.0%，成交量15.0万股，"
              "成交额5400.0港元。资金流向数据方面，8月1日综合环保集团无主力资金净流入，无超大单资金净流入，无大单资金净流入，"
              "无中单资金净流入，小单资金净流出5400.0港元。投行对该股关注度不高，90天内无投行对其给出评级。" + HK_PROFILE)
HK_CLOSE_4 = ("截至2023年8月4日收盘，综合环保集团(00923.HK)报收于0.04港元，上涨8.11%，换手率0.0%，成交量8.2万股，"
              "成交额3102.0港元。资金流向数据方面，8月4日综合环保集团无主力资金净流入，无超大单资金净流入，无大单资金净流入，"
              "无中单资金净流入，小单资金净流入2814.0港元。投行对该股关注度不高，90天内无投行对其给出评级。" + HK_PROFILE)
# Two different IT之家 stories (news-029.txt:1072, news-001.txt:1) and others, all ending in the same
# trailers that news-cn prints under thousands of articles.
VIVO = "IT之家 7 月 23 日消息，据 vivo 品牌副总裁贾净东今日在微博透露，“vivo 影像盛典”将于 7 月 23 日在西宁开幕。"
XESS = "IT之家 8 月 16 日消息，英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本，并更新了 libxess.dll 文件。"
OTHER_LEADS = ["IT之家 8 月 16 日消息，京东集团今日发布 Q2 财报，第二季度的营收为 2879 亿元人民币，同比增长 7.6%。",
               "IT之家 8 月 4 日消息，长城汽车宣布向红十字会捐款 2000 万元，用于灾区救援、重建等工作。"]
TRAILER = ("广告声明：文内含有的对外跳转链接（包括不限于超链接、二维码、口令等形式），用于传递更多信息，节省甄选时间，"
           "结果仅供参考，IT之家所有文章均包含本声明。本文为数据整理，不对您构成任何投资建议，投资有风险，请谨慎决策。"
           "声明：本网站所提供的信息仅供参考之用,并不代表本网赞同其观点，也不代表本网对其真实性负责。分享让更多人看到"
           "版权声明：凡本网文章下标注有版权声明的均为本网合法拥有版权或有权使用的作品，未经本网授权不得使用，违者本网将依法追究法律责任。"
           "返回搜狐，查看更多 责任编辑：")
# Unrelated stories, for the digest and as the corpus around the pairs (news-013.txt:1117).
SHOP = ("7月19日晚8时40分左右，湖南省益阳市桃江县马迹塘镇一名4岁男童在当地一超市内触电。20日上午，马迹塘镇政府工作人员"
        "告诉极目新闻记者，小孩触电后无大碍，超市与男孩父母已经协商好，他们将督促超市对漏电部位进行整改。")


def article(text: str, number: int, source: str = "news-test.txt", date: str | None = None) -> Article:
    return Article(source=source, number=number, headline="", kind="article", paragraphs=(text,), date=date)


def corpus(*texts: str) -> list[Article]:
    return [article(t, n) for n, t in enumerate(texts, start=1)]


def test_an_exact_reprint_is_grouped_and_the_rest_is_not():
    ids = group_reprints(corpus(GHOST_BABIES, SHOP, GHOST_BABIES_REPRINT, SEAT))
    assert ids[0] is not None and ids[0] == ids[2]
    assert ids[1] is None and ids[3] is None


def test_a_lightly_edited_copy_is_grouped():
    [pair] = score_pairs([SEAT, SEAT_EDITED])
    assert THRESHOLD <= pair.containment < 0.95  # edited, not identical
    ids = group_reprints(corpus(SEAT, GHOST_BABIES, SEAT_EDITED))
    assert ids[0] is not None and ids[0] == ids[2] and ids[1] is None


def test_one_template_with_other_figures_is_not_a_reprint():
    [pair] = score_pairs([HK_CLOSE_1, HK_CLOSE_4])
    assert pair.containment >= THRESHOLD  # the wording alone would match …
    assert pair.numbers is not None and not pair.is_reprint()  # … the figures do not
    assert group_reprints(corpus(HK_CLOSE_1, HK_CLOSE_4)) == [None, None]


def test_shared_boilerplate_does_not_make_different_stories_copies():
    texts = [lead + TRAILER for lead in [VIVO, XESS, *OTHER_LEADS]]
    # Counted as their own text, the trailers alone would make the two stories one group …
    counted = group_reprints(corpus(*texts), common_df=1000)
    assert counted[0] is not None and counted[0] == counted[1]
    # … but text that many articles carry is boilerplate and left out.
    assert group_reprints(corpus(*texts), common_df=3) == [None] * 4


def test_a_digest_does_not_chain_the_stories_it_quotes():
    digest = GHOST_BABIES + SEAT
    [quoted] = score_pairs([GHOST_BABIES, digest], pairs=[(0, 1)])
    assert quoted.containment > 0.95 and quoted.cover < 0.5 and not quoted.is_reprint()
    ids = group_reprints(corpus(GHOST_BABIES, SEAT, digest, SHOP))
    assert ids[0] is None  # the short item is not a copy of the digest that quotes it …
    assert ids[2] in (None, ids[1])  # … so the digest is at most one story's copy
    assert ids[3] is None


def test_cluster_needs_every_member_to_match_every_other():
    # 0~1, 1~2, 2~3 is a chain: 0 and 2 never matched, so they are never one group.
    groups = cluster(5, [(0, 1), (1, 2), (2, 3)], sizes=[50] * 5)
    assert all(not ({0, 2} <= set(g) or {1, 3} <= set(g)) for g in groups)
    assert cluster(4, [(0, 1), (0, 2), (1, 2)], sizes=[50] * 4) == [[0, 1, 2]]
    # A stub matching two long articles that do not match each other joins one of them only.
    stub_groups = cluster(3, [(0, 1), (0, 2)], sizes=[40, 90, 80])
    assert stub_groups == [[0, 1]]


def test_group_ids_are_stable_and_named_for_the_first_member():
    articles = corpus(SHOP, GHOST_BABIES, SEAT, GHOST_BABIES_REPRINT)
    first, again = group_reprints(articles), group_reprints(list(articles))
    assert first == again
    assert first[1] == group_id("news-test.txt", 2) and first[1].startswith("g:") and len(first[1]) == 14
    # Another file's articles around them do not change the id.
    more = [article(SEAT_EDITED, 7, source="news-other.txt")] + articles
    assert group_reprints(more)[2] == first[1]


def test_score_pairs_measures_given_pairs_whatever_their_similarity():
    pairs = score_pairs([GHOST_BABIES, SHOP, GHOST_BABIES_REPRINT], pairs=[(2, 0), (0, 1)])
    assert [(p.a, p.b) for p in pairs] == [(0, 2), (0, 1)]
    assert pairs[0].containment > 0.95 and pairs[1].containment < 0.1
    assert ReprintPair(0, 1, 0.9, 0.9, None).is_reprint() and not ReprintPair(0, 1, 0.9, 0.3, None).is_reprint()


def test_earliest_is_the_first_printing():
    dated = [article("x", 1, date="2023-07-28"), article("x", 2, date="2023-07-27"), article("x", 3, date=None)]
    assert earliest(dated) == 1
    # Dates with a year before month-day ones, those before undated; ties go to corpus order.
    assert earliest([article("x", 1), article("x", 2, date="--07-01"), article("x", 3, date="2023-08-02")]) == 2
    assert earliest([article("x", 1, date="--07-28"), article("x", 2, date="--07-03"), article("x", 3)]) == 1
    assert earliest([article("x", 1, date="2023-07-27"), article("x", 2, date="2023-07-27")]) == 0
    # A month-only date counts from its first day, as the index orders a group.
    assert earliest([article("x", 1, date="2023-07-02"), article("x", 2, date="2023-07")]) == 1
    with pytest.raises(ValueError):
        earliest([])
