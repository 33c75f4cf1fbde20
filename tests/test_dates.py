"""Dates from field values and from dump stamps (rag.ingest.dates)."""

from __future__ import annotations

import pytest

from rag.ingest.dates import DateValue, file_year, parse_date, parse_stamp, with_year


@pytest.mark.parametrize("value, iso, precision", [
    ("2023-07-28", "2023-07-28", "day"),
    ("2023/7/28", "2023-07-28", "day"),
    ("2023.07.28", "2023-07-28", "day"),
    ("2023年7月28日", "2023-07-28", "day"),
    ("2023-07-28T10:15:00+08:00", "2023-07-28", "day"),
    ("2023-07-28T10:15:00Z", "2023-07-28", "day"),
    ("2023-07-28 10:15", "2023-07-28", "day"),
    ("20230728", "2023-07-28", "day"),
    (" 2023-07-28 ", "2023-07-28", "day"),
    ("2023-07", "2023-07", "month"),
    ("2023年7月", "2023-07", "month"),
    ("7月28日", "--07-28", "month-day"),
])
def test_field_values_people_write(value, iso, precision):
    date = parse_date(value)
    assert (date.iso, date.precision, date.note) == (iso, precision, None)


@pytest.mark.parametrize("value", ["", "hello", "12345", "1.5", "2023-02-30", "2023-13", "2023-07-28 的报道",
                                   "第2版", "A3", None, 20230728])
def test_text_that_is_no_date_is_none(value):
    assert parse_date(value) is None


def test_a_default_year_completes_a_date_without_one_and_says_so():
    date = parse_date("7-28", default_year=2023)
    assert date == DateValue("2023-07-28", "day", "year given by the reader")
    assert parse_date("2022-07-28", default_year=2023).iso == "2022-07-28"


# Every stamp form of the news-cn README and of the files (real prefixes, before `，正文：`).
@pytest.mark.parametrize("prefix, iso", [
    ("2023-07-27 16:50", "2023-07-27"),
    ("2023-08-16 18:24:57", "2023-08-16"),
    ("2023-07-26", "2023-07-26"),
    ("2023/07/26 ", "2023-07-26"),
    ("2023-07-26        ", "2023-07-26"),
    ("7-20 15:37", "--07-20"),
    ("07-20 15:29", "--07-20"),
    ("8-1 14:13", "--08-01"),
    ("23-07-26 22:00", "2023-07-26"),
    ("2023年07月19日", "2023-07-19"),
    ("[2023年07月20日]", "2023-07-20"),
    ("[2023/07/20  16:52]", "2023-07-20"),
    ("[              2023/07/20  16:08              ]", "2023-07-20"),
    ("[ 2023-07-28 16：40 ] ", "2023-07-28"),
    ("2023年07月20日 18:14:59 来自北京市", "2023-07-20"),
    ("08/16  13:50", "--08-16"),
    ("08/05", "--08-05"),
    ("[\t\t\t07/19\t\t\t]", "--07-19"),
    ("07月27日 08:23", "--07-27"),
    ("202307/21 07:57:00", "2023-07-21"),
    ("202307/1915:55:52", "2023-07-19"),
    ("时间：2023-07-28 07:58:00", "2023-07-28"),
    ("发布时间：2023-08-02 13:13:17", "2023-08-02"),
    ("发表时间：2023-07-25 06:34", "2023-07-25"),
    ("来源：央视网  |  2023年07月20日 08:57:43", "2023-07-20"),
    ("华夏经纬网 > 新闻 > 大陆新闻 > 社会综合      2023-07-26 18:00:49  ", "2023-07-26"),
    ("    2023年05月22日 10:33    来源：中新网广东", "2023-05-22"),
    ("2023-07-24 20:58:26来源: 澎湃新闻              北京                举报            ", "2023-07-24"),
])
def test_every_stamp_form_gives_its_date(prefix, iso):
    assert parse_stamp(prefix).iso == iso


@pytest.mark.parametrize("prefix", ["", "/", "来源：中国青年报客户端", "记者：韩轩", "来源：人民日报客户端  "])
def test_a_prefix_without_a_date_has_none(prefix):
    assert parse_stamp(prefix) is None


def test_a_time_is_never_read_as_a_month_day():
    assert parse_stamp("16:50") is None
    assert parse_stamp("2023-07-27 12:31").iso == "2023-07-27"


def test_the_file_year_is_the_one_all_dated_stamps_agree_on():
    stamps = [parse_stamp(p) for p in ("2023-07-27 16:50", "7-20 15:37", "2023年07月19日", "08/05")]
    assert file_year(stamps) == 2023
    assert file_year([parse_stamp("2022-12-31"), parse_stamp("2023-01-01"), parse_stamp("12-31")]) is None
    assert file_year([parse_stamp("7-20 15:37"), None]) is None


def test_with_year_completes_a_month_day_or_refuses_a_day_that_year_lacks():
    assert with_year(parse_stamp("7-20 15:37"), 2023, "note") == DateValue("2023-07-20", "day", "note")
    assert with_year(parse_stamp("02-29"), 2023, "note") is None
    assert with_year(parse_stamp("02-29"), 2024, "note").iso == "2024-02-29"
