"""One article per file with YAML front matter: every field, bad YAML, sub-headings, headlines."""

from __future__ import annotations

import pytest

from rag.errors import CorpusError
from rag.ingest.chunks import chunk_article
from rag.ingest.frontmatter import has_front_matter, read_article_file

from helpers import SEEDS

# A real story from the seeds (004: 山货触网 农户生活更红火), written out as a one-article file.
QINGQUAN = """---
title: 山货触网 农户生活更红火
date: 2021-06-30
paper: 浙江日报
page: 第7版
section: 乡村振兴
url: https://zjrb.zjol.com.cn/html/2021-06/30/content.htm
author: 记者 王璐怡
tags: [电商, 党建]
---
# 山货触网 农户生活更红火

清泉村地处偏远山区，过去村里的笋干、
茶叶卖不出好价钱。

## 党员带头开网店

去年，村里的电商交易额达到1200万元，
不少农户在家门口就能增收。

## 直播带货

村党支部书记每周都在直播间推介山货。
"""


def test_every_front_matter_field_is_read():
    (article,) = read_article_file(QINGQUAN, "qingquan.md")
    assert (article.headline, article.headline_source, article.number, article.source) == (
        "山货触网 农户生活更红火", "field", 1, "qingquan.md")
    assert (article.date, article.date_precision) == ("2021-06-30", "day")  # YAML reads it as a date
    assert (article.paper, article.page, article.section, article.author) == ("浙江日报", "第7版", "乡村振兴", "记者 王璐怡")
    assert article.url == "https://zjrb.zjol.com.cn/html/2021-06/30/content.htm"
    # Hard-wrapped lines are one paragraph; the `# Title` line repeating the title is no paragraph.
    assert article.paragraphs == ("清泉村地处偏远山区，过去村里的笋干、茶叶卖不出好价钱。",
                                  "去年，村里的电商交易额达到1200万元，不少农户在家门口就能增收。",
                                  "村党支部书记每周都在直播间推介山货。")


def test_sub_headings_head_their_paragraphs_and_label_the_chunks():
    (article,) = read_article_file(QINGQUAN, "qingquan.md")
    assert article.subheads == ((1, "党员带头开网店"), (2, "直播带货"))
    assert [article.subhead_at(n) for n in (1, 2, 3)] == [None, "党员带头开网店", "直播带货"]
    assert not any(p.startswith("#") for p in article.paragraphs)
    labels = [c.label for c in chunk_article(article, max_chars=40)]
    assert "山货触网 农户生活更红火 › 直播带货" in labels


def test_a_title_line_heads_the_article_when_the_front_matter_has_none():
    text = "---\ndate: 2021年6月\npaper: 浙江日报\n---\n\n# 清泉村电商交易额破千万\n\n去年，村里的电商交易额达到1200万元。\n"
    (article,) = read_article_file(text, "a.md")
    assert (article.headline, article.headline_source) == ("清泉村电商交易额破千万", "page")
    assert (article.date, article.date_precision) == ("2021-06", "month")
    assert article.paragraphs == ("去年，村里的电商交易额达到1200万元。",)


def test_without_title_or_title_line_the_lead_heads_the_article():
    text = "---\npaper: 浙江日报\n---\n去年，村里的电商交易额达到1200万元。不少农户增收。\n"
    (article,) = read_article_file(text, "a.txt")
    assert (article.headline, article.headline_source) == ("去年，村里的电商交易额达到1200万元", "lead")


def test_chinese_keys_and_an_unreadable_date():
    text = "---\n标题: 党建联盟 构建发展“共同体”\n日期: 上个月\n来源: 温州日报\n---\n正文一段。\n"
    problems: list[str] = []
    (article,) = read_article_file(text, "a.md", problems=problems)
    assert (article.headline, article.paper, article.date) == ("党建联盟 构建发展“共同体”", "温州日报", None)
    assert problems == ["front matter date ('上个月') not read; the article is kept undated"]


def test_bad_yaml_names_the_line_of_the_file():
    text = "---\ntitle: 山货触网\ndate: 2021-06-30: 上午\npaper: 浙江日报\n---\n正文。\n"
    with pytest.raises(CorpusError, match=r"a.md: the front matter is not valid YAML at line 3 "
                                          r"\(mapping values are not allowed here\); write it as `key: value`"):
        read_article_file(text, "a.md")


def test_front_matter_that_is_no_mapping_or_asks_for_python_objects_is_refused():
    with pytest.raises(CorpusError, match="not `key: value` lines"):
        read_article_file("---\n- 一\n- 二: 三\n---\n正文。\n", "a.md")
    # safe_load only: a tag that would construct an object is an error, never run.
    with pytest.raises(CorpusError, match="not valid YAML at line 2"):
        read_article_file("---\ntitle: !!python/object/apply:os.system [echo pwned]\n---\n正文。\n", "a.md")


def test_what_has_front_matter():
    assert has_front_matter(QINGQUAN) and has_front_matter("\ufeff---\ntitle: 甲\n---\n正文")
    assert not has_front_matter("---\n\n一条分隔线下的正文。\n\n---\n")  # rules, no `key:` lines
    assert not has_front_matter("---\ntitle: 没有结束的前言\n正文。\n")
    assert not has_front_matter("# 标题\n\n---\ntitle: 不在开头\n---\n")
    for page in sorted(SEEDS.glob("*.txt")):
        assert not has_front_matter(page.read_text(encoding="utf-8")), page.name


def test_a_file_of_front_matter_only_holds_no_article():
    assert read_article_file("---\ntitle: 空\n---\n\n", "a.md") == []
