"""JSON Lines / CSV records → articles: field names in English and Chinese, field maps, records
left out (no body, bad JSON) and the errors for files that are not records at all."""

from __future__ import annotations

import json

import pytest

from rag.errors import CorpusError
from rag.ingest.records import field_names, parse_field_map, read_records

# Real stories from the news-cn corpus (news-001.txt), as an export would hold them.
XINGSHAN = ("据湖北省宜昌市兴山县人民政府消息，14日20时30分左右，兴山县榛子乡平瓦公路（乡村公路）一处山体突发岩石崩塌，"
            "砸中一辆途经此地的7座小型面包车，导致车辆严重损毁，车上7人均遇难。")
XINGSHAN_2 = "事发后，宜昌市和兴山县迅速组织救援。目前相关处置工作正在进行。"
XESS = ("IT之家 8 月 16 日消息，英特尔已经为游戏开发者提供了最新的 XeSS 1.2.0 版本，附带最新的 SDK（软件开发工具包）。"
        "XeSS 1.2 向后兼容 XeSS 1.0 和 1.1。")
DRILL = "今天下午“北部·联合-2023”演习在日本海海域圆满结束，并在指挥舰齐齐哈尔舰上举行了闭幕式。"


def _jsonl(*records) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records) + "\n"


def test_jsonl_with_our_field_names_keeps_every_field():
    text = _jsonl(
        {"title": "兴山县山体崩塌致7人遇难", "date": "2023-08-15 10:12:17", "paper": "人民网", "page": "A3",
         "section": "社会", "url": "http://example.cn/a/1", "author": "王逸雯", "body": XINGSHAN + "\n\n" + XINGSHAN_2},
        {"Title": "英特尔发布 XeSS 1.2", "Date": "2023-08", "Source": "IT之家", "Text": XESS},
    )
    first, second = read_records(text, "export.jsonl", "jsonl")
    assert (first.number, first.record, first.headline, first.headline_source) == (1, 1, "兴山县山体崩塌致7人遇难", "field")
    assert (first.date, first.date_precision) == ("2023-08-15", "day")
    assert (first.paper, first.page, first.section, first.url, first.author) == (
        "人民网", "A3", "社会", "http://example.cn/a/1", "王逸雯")
    assert first.paragraphs == (XINGSHAN, XINGSHAN_2) and first.kind == "article" and first.source == "export.jsonl"
    # Names match whatever their case; a month is a month, not a made-up day.
    assert (second.record, second.paper, second.date, second.date_precision) == (2, "IT之家", "2023-08", "month")
    assert second.paragraphs[0].startswith("IT之家8月16日消息")  # the normal form of body text (OCR spaces)


def test_jsonl_with_chinese_field_names_and_no_title_is_headed_by_its_lead():
    text = _jsonl({"发布时间": "2023年7月23日 21:27", "来源": "央视网", "栏目": "军事", "正文": DRILL, "链接": "http://x.cn/2"})
    (article,) = read_records(text, "cctv.jsonl", "jsonl")
    assert article.headline == "今天下午“北部·联合-2023”演习在日本海海域圆满结束，并在指挥舰齐齐哈尔舰…"  # 40 at most
    assert article.headline_source == "lead"
    assert (article.date, article.paper, article.section, article.url) == ("2023-07-23", "央视网", "军事", "http://x.cn/2")


def test_csv_with_our_names_reads_quoted_commas_and_line_breaks():
    text = ("title,date,paper,body\n"
            f"兴山县山体崩塌致7人遇难,2023/8/15,人民网,\"{XINGSHAN}\n{XINGSHAN_2}\"\n"
            "\n"  # a blank row is no record
            f"英特尔发布 XeSS 1.2,20230816,IT之家,\"{XESS}\"\n")
    first, second = read_records(text, "export.csv", "csv")
    assert first.paragraphs == (XINGSHAN, XINGSHAN_2) and first.record == 1
    assert (second.record, second.date, second.headline) == (2, "2023-08-16", "英特尔发布 XeSS 1.2")


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_csv_with_chinese_headers_and_another_delimiter(delimiter):
    header = delimiter.join(["标题", "日期", "媒体", "版面", "作者", "内容"])
    row = delimiter.join(["演习圆满结束", "2023-07-23", "解放军报", "第2版", "邱文生", DRILL])
    (article,) = read_records("\ufeff" + header + "\n" + row + "\n", "drill.tsv", "csv")
    assert (article.headline, article.date, article.paper, article.page, article.author) == (
        "演习圆满结束", "2023-07-23", "解放军报", "第2版", "邱文生")
    assert article.paragraphs == (DRILL,)


def test_a_field_map_names_fields_we_would_not_guess():
    text = _jsonl({"news_title": "英特尔发布 XeSS 1.2", "pub_time": "2023-08-16", "news_content": XESS,
                   "source": "张三"})
    (article,) = read_records(text, "a.jsonl", "jsonl", "title=news_title, body=news_content，date=pub_time;author=source")
    assert (article.headline, article.date, article.author) == ("英特尔发布 XeSS 1.2", "2023-08-16", "张三")
    # "source" is mapped to the author, so it is no longer the paper's default name.
    assert article.paper is None


def test_a_mapped_name_wins_over_the_default_names():
    text = "text,摘要\n摘要不是正文。,兴山县发生山体崩塌。\n"
    (article,) = read_records(text, "a.csv", "csv", "body=摘要")
    assert article.paragraphs == ("兴山县发生山体崩塌。",)


def test_field_map_syntax():
    assert parse_field_map("body=内容,Headline=标题") == {"body": "内容", "title": "标题"}
    assert parse_field_map("") == {}
    assert field_names("body=内容")["body"][0] == "内容"
    for bad in ("body", "body=", "words=内容"):
        with pytest.raises(CorpusError, match="ours=theirs with ours one of title, date"):
            parse_field_map(bad)


def test_a_record_without_body_is_left_out_and_reported_by_number():
    text = _jsonl({"title": "有正文", "body": XESS}, {"title": "无正文", "body": "  "}, {"title": "也无正文"},
                  {"title": "又有正文", "body": DRILL})
    problems: list[str] = []
    articles = read_records(text, "a.jsonl", "jsonl", problems=problems)
    assert [(a.number, a.record, a.headline) for a in articles] == [(1, 1, "有正文"), (2, 4, "又有正文")]
    assert problems == ["lines 2, 3 have no body and were left out"]


def test_a_file_where_no_record_has_a_body_says_which_fields_it_has_and_how_to_map_them():
    text = "新闻标题,发布日期,新闻内容\n演习圆满结束,2023-07-23," + DRILL + "\n"
    with pytest.raises(CorpusError) as caught:
        read_records(text, "drill.csv", "csv")
    message = str(caught.value)
    assert "drill.csv: no record has a body" in message
    assert "its fields are 新闻标题, 发布日期, 新闻内容" in message
    assert "body / content / text / 正文 / 内容" in message
    # The hint names the field with the longest values: the one that holds the text.
    assert "`RAG_FIELD_MAP=body=新闻内容` or `rag index --fields body=新闻内容`" in message


def test_invalid_json_lines_are_left_out_and_reported():
    text = _jsonl({"body": XESS}, '{"body": "截断的记录', {"body": DRILL}, '["一个列表"]', {"body": XINGSHAN})
    problems: list[str] = []
    articles = read_records(text, "a.jsonl", "jsonl", problems=problems)
    assert [a.record for a in articles] == [1, 3, 5]
    assert len(problems) == 1 and problems[0].startswith("lines 2, 4 are not a JSON object and were left out")


def test_a_file_of_mostly_invalid_lines_is_not_json_lines():
    page = "# 演习圆满结束\n\n" + DRILL + "\n\n{\"body\": \"一行\"}\n"
    with pytest.raises(CorpusError, match=r"a.jsonl is not JSON Lines: 2 of 3 lines are not JSON objects "
                                          r"\(first, line 1: Expecting value\)"):
        read_records(page, "a.jsonl", "jsonl")


def test_a_json_array_and_a_wrapped_array_are_records_numbered_by_item():
    items = [{"title": "甲", "body": XESS}, "不是对象", {"title": "乙", "body": DRILL}]
    problems: list[str] = []
    array = read_records(json.dumps(items, ensure_ascii=False, indent=2), "a.json", "jsonl", problems=problems)
    assert [(a.headline, a.record) for a in array] == [("甲", 1), ("乙", 3)]
    assert problems == ["item 2 is not a JSON object and was left out"]
    wrapped = read_records(json.dumps({"total": 2, "articles": [items[0], items[2]]}, ensure_ascii=False), "b.json", "jsonl")
    assert [a.headline for a in wrapped] == ["甲", "乙"]
    # An article with a list of objects of its own is one record, not a wrapper.
    single = read_records(json.dumps({"body": XESS, "images": [{"src": "a.png"}]}), "c.json", "jsonl")
    assert len(single) == 1 and single[0].paragraphs[0].startswith("IT之家")


def test_a_broken_json_array_names_its_line():
    with pytest.raises(CorpusError, match=r"a.json is not valid JSON at line 4, column 12 \(Expecting value\)"):
        read_records('\n[\n  {"body": "正文"},\n  {"body": 正文}\n]\n', "a.json", "jsonl")


def test_a_json_string_holding_a_line_separator_stays_one_record():
    text = _jsonl({"body": "第一段。\u2028仍是同一条记录。"}, {"body": DRILL})
    assert [a.record for a in read_records(text, "a.jsonl", "jsonl")] == [1, 2]


def test_list_bodies_numbers_and_unreadable_dates():
    text = _jsonl({"body": [XINGSHAN, XINGSHAN_2], "page": 3, "date": "昨天上午"},
                  {"body": DRILL, "date": 20230723})
    problems: list[str] = []
    first, second = read_records(text, "a.jsonl", "jsonl", problems=problems)
    assert first.paragraphs == (XINGSHAN, XINGSHAN_2) and first.page == "3"
    assert (first.date, first.date_precision) == (None, "unknown")
    assert problems == ["dates not read, articles kept undated: line 1 ('昨天上午')"]
    assert second.date == "2023-07-23"


def test_csv_rows_count_without_the_header_and_an_empty_file_has_no_records():
    text = "title,body\n甲,\n乙," + XESS + "\n"
    problems: list[str] = []
    (article,) = read_records(text, "a.csv", "csv", problems=problems)
    assert article.record == 2 and problems == ["row 1 has no body and was left out"]
    assert read_records("", "empty.csv", "csv") == [] and read_records("\n\n", "empty.jsonl", "jsonl") == []
