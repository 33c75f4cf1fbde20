"""Seed pages → articles → chunks: headlines, boundaries, OCR repair, duplicates, bad files, and
what discovery refuses (links, FIFOs)."""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from rag.ingest.chunks import chunk_article
from rag.ingest.corpus import load_corpus, read_page
from rag.ingest.pages import parse_page
from rag.ingest.discovery import check_page, discover_pages
from rag.errors import CorpusError
from rag.textnorm import clean_body, match_key

from helpers import OUTSIDE_MARKER, OUTSIDE_PAGE, SEEDS, plant_refused_files

EXPECTED_HEADLINES = {
    "000_566d8f183ca588ef.txt": [
        "苍南县委组织部：“红色五力”赋能乡村振兴",
        "以学促干练就实干“基本功”",
        "党史学习教育“红色公交”驶入红色教育基地",
        "苍南县党史知识大赛现场",
        "矾山镇“我为群众办实事”之埔坪村廊桥项目",
        "党建联盟 构建发展“共同体”",
        "村社擂台搭建争优“竞技台”",
    ],
    "001_6e134e1e90905a00.txt": [
        "“红盟携手”解决群众关键小事",
        "结对交流 共享共建",
        "“创富联盟”助力增收",
        "“童装之都”添红色新阵地",
        "服务群众 提升百姓幸福感",
        "助企纾困 共促发展",
        "打好“乡贤牌” 唱响“振兴曲”",
        "送药进村惠民生 健康服务暖民心",
        "乡贤“牵线” 名医为乡亲送健康",
    ],
    "002_11b752b66f07f274.txt": [
        "水头：用基层党建“撬动”民生幸福",
    ],
    "003_5fe0b02ab379ac0e.txt": [
        "怀宁县积极推进村级联合党委建设赋能乡村振兴",
        "太湖县紧扣“夜”字做优乡村振兴文章",
        "大观区以组织振兴推动乡村振兴",
        "衢州市柯城区：打造城乡互助党建联盟，释放共富强大动能",
    ],
    "004_a4961472c067a0e4.txt": [
        "勇担使命，守好红色根脉",
        "怀「赶考」之心 答时代之卷",
        "山货触网 农户生活更红火",
        "浙江党建工作大事记",
        "在嘉兴南湖，来自全国各地的党员群众在红船边重温党的历史",
        "辖区企业员工通过荆城“楼宇大脑”了解楼宇产业分布",
    ],
}

# Sub-headings (小标题) are sections of their story: (story, [(first paragraph, 0-based), title]).
EXPECTED_SUBHEADS = {
    "002_11b752b66f07f274.txt": ("水头：用基层党建“撬动”民生幸福", [
        (2, "强化党建“驱动力”，打开群众幸福门"),  # paragraph 0 is the byline
        (7, "发挥党建“牵引力”，服务企业新发展"),
        (13, "激发党建“新活力”，开拓乡村致富路"),
    ]),
    # One story too: its byline names the reporters of all three accounts (共享联盟·福明街道 for
    # the 福明街道 one) and its one-paragraph lead introduces them.
    "004_a4961472c067a0e4.txt": ("勇担使命，守好红色根脉", [
        (2, "余杭区小古城村党委书记、村委会主任林国荣：党建统领，乡村焕发新活力"),
        (9, "庆元县安南乡党委书记吴华：党建联建，绘就边界同心圆"),
        (18, "鄞州区福明街道荆城楼宇社区党委书记屈云龙：党建赋能，楼宇治理更精细"),
    ]),
}


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(SEEDS)


def _page(corpus, name):
    return next(p for p in corpus.pages if p.source == name)


@pytest.mark.parametrize("name", sorted(EXPECTED_HEADLINES))
def test_every_expected_headline_is_found(corpus, name):
    headlines = [a.headline for a in _page(corpus, name).articles]
    missing = [h for h in EXPECTED_HEADLINES[name] if h not in headlines]
    assert not missing, f"{name}: missing {missing}; parser found {headlines}"


def test_articles_hold_their_own_text(corpus):
    articles = {(a.source, a.headline): a.text for a in corpus.articles}
    # Seed 000 prints section headings after their sections; each must head its own text.
    assert "矾山镇" in articles[("000_566d8f183ca588ef.txt", "以学促干练就实干“基本功”")]
    assert "宜山镇" in articles[("000_566d8f183ca588ef.txt", "党建联盟 构建发展“共同体”")]
    assert "灵溪镇" in articles[("000_566d8f183ca588ef.txt", "村社擂台搭建争优“竞技台”")]
    assert "矾山" not in articles[("000_566d8f183ca588ef.txt", "苍南县委组织部：“红色五力”赋能乡村振兴")]
    # A byline opens its story's text (who reported it is asked, and only text is searched), and
    # a photo credit follows its caption; captions are not glued into stories.
    story = articles[("001_6e134e1e90905a00.txt", "“红盟携手”解决群众关键小事")]
    assert story.startswith("张 毓\n\n“这个电力驿站")
    assert articles[("000_566d8f183ca588ef.txt", "党史学习教育“红色公交”驶入红色教育基地")].endswith("。 李士明/摄")
    assert "红船边" not in articles[("004_a4961472c067a0e4.txt", "勇担使命，守好红色根脉")]
    # The bulletin's distribution list is not part of the last bulletin item.
    assert "省委组织部" not in articles[("003_5fe0b02ab379ac0e.txt", "衢州市柯城区：打造城乡互助党建联盟，释放共富强大动能")]


def test_kickers_and_bylines(corpus):
    by = {a.headline: a for a in corpus.articles}
    assert by["打好“乡贤牌” 唱响“振兴曲”"].kicker == "南浔凝聚统战力量共绘同心圆"
    assert by["山货触网 农户生活更红火"].kicker == "百姓心中的这十年"
    assert by["水头：用基层党建“撬动”民生幸福"].byline == "本报记者 周兆奕"
    assert by["怀宁县积极推进村级联合党委建设赋能乡村振兴"].byline == "怀宁县委组织部"
    assert by["“创富联盟”助力增收"].byline == "吴丽燕"


# --------------------------------------------------------------------------- sub-headings


@pytest.mark.parametrize("name", sorted(EXPECTED_SUBHEADS))
def test_sub_headings_are_sections_of_one_story(corpus, name):
    headline, subheads = EXPECTED_SUBHEADS[name]
    page = _page(corpus, name)
    assert not {t for _, t in subheads} & {a.headline for a in page.articles}, "a section became an article"
    (story,) = [a for a in page.articles if a.headline == headline]
    assert list(story.subheads) == subheads and story.byline


def test_sections_start_where_their_sub_heading_stands_and_chunks_carry_it(corpus):
    headline, subheads = EXPECTED_SUBHEADS["002_11b752b66f07f274.txt"]
    story = next(a for a in corpus.articles if a.headline == headline)
    assert [story.paragraphs[i][:6] for i, _ in subheads] == ["“周一红烧猪", "政策，收集企", "朝阳的黄汤、"]
    chunks = [c for c in corpus.chunks if (c.source, c.article_no) == (story.source, story.number)]

    def holding(probe):
        return next(c for c in chunks if probe in c.text)

    assert holding("水头镇充分发挥党建引领作用").subhead is None  # the lead, before any sub-heading
    canteen = holding("水头镇投入近70万元")
    assert canteen.subhead == "强化党建“驱动力”，打开群众幸福门"
    assert canteen.label == "水头：用基层党建“撬动”民生幸福 › 强化党建“驱动力”，打开群众幸福门"
    assert holding("白洪潘还帮忙对接相关银行").subhead == "发挥党建“牵引力”，服务企业新发展"
    assert holding("四中杨梅").subhead == "激发党建“新活力”，开拓乡村致富路"
    for c in chunks:  # no chunk runs over a sub-heading: its last paragraph is under its first's
        last = c.paragraph + c.text.count("\n\n")
        assert story.subhead_at(last) == c.subhead, c.chunk_id


def test_captions_between_sections_stay_captions(corpus):
    page = _page(corpus, "004_a4961472c067a0e4.txt")
    story = next(a for a in page.articles if a.headline == "勇担使命，守好红色根脉")
    caption = next(a for a in page.articles if a.headline == "浙闽边界乡镇开展茶业技能培训，推动两地茶产业发展")
    assert caption.kind == "caption" and "茶业技能培训" not in story.text
    assert "楼宇大脑" in story.text and "赶考" not in story.text  # the next bylined story is its own


@pytest.mark.parametrize("name", ["000_566d8f183ca588ef.txt", "001_6e134e1e90905a00.txt", "003_5fe0b02ab379ac0e.txt"])
def test_pages_of_headlines_only_keep_their_articles(corpus, name):
    """Every heading of these pages heads a story (its own byline, a bulletin item, no byline at
    all on the page): none is folded into another."""
    page = _page(corpus, name)
    expected = EXPECTED_HEADLINES[name]
    assert [a.headline for a in page.articles if a.headline in expected or a.kind in ("article", "bulletin")] == expected
    assert not any(a.subheads for a in page.articles)


def _body(n: int) -> str:
    """A paragraph long enough beside a headline for the page reader to tell the two apart (each
    its own: a page's repeated sentences are dropped as OCR repeats)."""
    return f"第{n}段正文足够长，好让标题比正文短得多而被认作标题；它讲了第{n}件事，又讲了另外的第{n}件事。"


def _ocr_page(*blocks: str) -> str:
    """A plain-text page (no markdown), blocks apart by blank lines as OCR prints them."""
    return "\n\n".join(blocks) + "\n"


def test_two_bylined_stories_with_parallel_headlines_stay_two():
    page = _ocr_page("强化党建“驱动力”，打开群众幸福门", "本报记者 张三", _body(0), _body(1),
                     "发挥党建“牵引力”，服务企业新发展", "本报记者 李四", _body(2))
    articles = parse_page(page, "t.txt").articles
    assert [(a.headline, a.byline) for a in articles] == [("强化党建“驱动力”，打开群众幸福门", "本报记者 张三"),
                                                          ("发挥党建“牵引力”，服务企业新发展", "本报记者 李四")]
    assert not any(a.subheads for a in articles)


def test_numbered_sub_headings_right_under_the_byline_are_sections():
    bodies = [_body(n) for n in range(5)]
    page = _ocr_page("某县党建工作综述", "本报记者 张三", "一、坚持党建引领", bodies[0], bodies[1],
                     "二、强化服务保障", bodies[2], bodies[3], "三、推动共同富裕", bodies[4])
    (story,) = parse_page(page, "t.txt").articles
    assert (story.headline, story.byline) == ("某县党建工作综述", "本报记者 张三")
    # The first heads the byline too (paragraph 0), so the byline is in its chunk, not one of its own.
    assert story.subheads == ((0, "一、坚持党建引领"), (3, "二、强化服务保障"), (5, "三、推动共同富裕"))
    assert [c.subhead for c in chunk_article(story)] == [t for _, t in story.subheads]


def test_the_parallel_run_ends_at_the_first_heading_that_breaks_it():
    bodies = [_body(n) for n in range(4)]
    page = _ocr_page("水头：用基层党建“撬动”民生幸福", "本报记者 张三", bodies[0],
                     "强化党建“驱动力”，打开群众幸福门", bodies[1], "发挥党建“牵引力”，服务企业新发展", bodies[2],
                     "图书馆开放时间调整", bodies[3])
    story, other = parse_page(page, "t.txt").articles
    assert [t for _, t in story.subheads] == ["强化党建“驱动力”，打开群众幸福门", "发挥党建“牵引力”，服务企业新发展"]
    assert other.headline == "图书馆开放时间调整" and other.paragraphs == (bodies[3],)


@pytest.mark.parametrize("blocks", [
    # Parallel headings with no bylined story before them: nothing to hang them on.
    ("强化党建“驱动力”，打开群众幸福门", None, "发挥党建“牵引力”，服务企业新发展", None, "激发党建“新活力”，开拓乡村致富路", None),
    # After a bylined story, but of different shapes: separate items.
    ("水头：用基层党建“撬动”民生幸福", "本报记者 张三", None, "村里来了新书记", None, "县委召开全会，部署下半年工作", None),
])
def test_headings_that_are_not_parallel_sections_stay_articles(blocks):
    page = _ocr_page(*(_body(n) if b is None else b for n, b in enumerate(blocks)))  # None: a paragraph
    headlines = [b for b in blocks if b is not None and not b.startswith("本报记者")]
    assert [a.headline for a in parse_page(page, "t.txt").articles] == headlines


def test_no_chunk_crosses_an_article(corpus):
    articles = {(a.source, a.number): a for a in corpus.articles}
    for chunk in corpus.chunks:
        article = articles[(chunk.source, chunk.article_no)]
        assert chunk.article == article.headline
        assert article.text[chunk.start:chunk.end] == chunk.text, chunk.chunk_id
        assert 0 < len(chunk.text) <= 350 * 1.15, chunk.chunk_id
    ids = [c.chunk_id for c in corpus.chunks]
    assert len(ids) == len(set(ids))


def test_every_seed_character_of_body_text_survives(corpus):
    """Every body sentence of a seed is in some article (nothing silently dropped)."""
    text = match_key("".join(a.text for a in corpus.articles))
    for probe in ["为当地70多名农户解决灌溉之忧", "群众满意率达99.5%以上", "去年交易额超两亿元",
                  "帮助3200余名闲置劳动力家门口就业增收", "中共浙江省第十五次代表大会在杭州召开"]:
        assert match_key(probe) in text, probe


def test_duplicate_paragraphs_are_dropped(corpus):
    page = match_key("".join(a.text for a in _page(corpus, "002_11b752b66f07f274.txt").articles))
    assert page.count(match_key("水头镇积极探索构建企业“党建三包”机制")) == 1
    page4 = match_key("".join(a.text for a in _page(corpus, "004_a4961472c067a0e4.txt").articles))
    assert page4.count(match_key("社工让他在“楼宇大脑”前坐下来")) == 1
    assert page4.count(match_key("从接洽到最终落地，仅用了短短一周时间")) == 1


def test_ocr_repair(corpus):
    text = "".join(a.text for a in corpus.articles)
    assert "乡村振兴" in text and "振 兴" not in text
    assert "全县427个村社" in text  # spaces around numbers inside Chinese text removed
    assert "文化广场" in text  # "全民文化 广场"
    # Lines broken mid-sentence are joined into one paragraph.
    assert "该村党员干部们又办结了一项民生实事" in text
    assert "\n" not in "".join(p for a in corpus.articles for p in a.paragraphs)
    # Half-width punctuation inside Chinese text is made full-width.
    assert "浙江，中国革命红船的起航地" in text


def test_clean_body_normalises_width_and_invisible_characters():
    assert clean_body("ＡＢＣ１２３ 乡村\u200b振 兴") == "ABC123乡村振兴"
    assert clean_body("党建统领,乡村焕发新活力") == "党建统领，乡村焕发新活力"


def test_long_paragraph_is_split_at_sentence_ends():
    body = "".join(f"这是第{i}个用于测试切分的句子，内容足够长以便观察效果。" for i in range(40))
    page = "# 测试标题\n\n" + body + "\n"
    article = parse_page(page, "t.txt").articles[0]
    chunks = chunk_article(article, max_chars=350)
    assert len(chunks) >= 3
    for c in chunks:
        assert len(c.text) <= 350
        assert c.text.endswith("。")
    assert "".join(c.text for c in chunks) == article.text


def test_short_paragraphs_are_merged_within_the_article():
    page = "# 甲\n\n短句一。\n\n短句二。\n\n# 乙\n\n短句三。\n"
    articles = parse_page(page, "t.txt").articles
    chunks = [c for a in articles for c in chunk_article(a)]
    assert [c.article for c in chunks] == ["甲", "乙"]
    assert chunks[0].text == "短句一。\n\n短句二。"


def test_new_markdown_page_works_like_the_seeds(tmp_path):
    (tmp_path / "new.md").write_text("# 新闻标题\n\n本报记者 张三\n\n第一段内容，讲了一件事。\n\n第二段。\n",
                                     encoding="utf-8")
    corpus = load_corpus(tmp_path)
    (article,) = corpus.articles
    assert article.headline == "新闻标题" and article.byline == "本报记者 张三"
    assert article.paragraphs == ("本报记者 张三", "第一段内容，讲了一件事。", "第二段。")


def test_gb18030_page_is_decoded(tmp_path):
    path = tmp_path / "gbk.txt"
    path.write_bytes("# 标题\n\n正文内容在这里。\n".encode("gb18030"))
    assert "正文内容" in read_page(path)


def test_unreadable_page_is_skipped_with_a_clear_reason(tmp_path):
    (tmp_path / "good.txt").write_text("# 标题\n\n正文。\n", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\xfa" * 3 + b"\x81\x00\xff" * 50)
    (tmp_path / "blank.txt").write_text("  \n\n", encoding="utf-8")
    corpus = load_corpus(tmp_path)
    skipped = dict(corpus.skipped)
    assert set(skipped) == {"bad.txt", "blank.txt"}
    assert "iconv" in skipped["bad.txt"]
    assert [a.headline for a in corpus.articles] == ["标题"]


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="no pages"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")


# --------------------------------------------------------------------------- what discovery refuses


@pytest.fixture
def planted(tmp_path):
    """A copy of the seeds with links (outside, to a folder outside, inside) and a FIFO planted."""
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    return corpus, tmp_path / "outside", plant_refused_files(corpus, tmp_path / "outside")


def test_discovery_refuses_every_link_and_fifo_and_names_them(planted):
    corpus, outside, expected = planted
    found = discover_pages(corpus)
    assert [p.name for p in found.pages] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert {r.file: r.kind for r in found.refused} == expected
    leaving = next(r for r in found.refused if r.file == "902_passwd.txt")
    assert leaving.reason.startswith(f"link leaving the corpus (→ {(outside / 'secret.txt').resolve()})")
    assert "copy the page" in leaving.reason and OUTSIDE_MARKER not in leaving.reason


def test_nothing_outside_the_corpus_is_read_into_it(planted):
    corpus, _, expected = planted
    loaded = load_corpus(corpus)
    assert OUTSIDE_MARKER not in "".join(c.text + c.context_text for c in loaded.chunks)
    assert {p.source for p in loaded.pages} == {p.name for p in SEEDS.glob("*.txt")}
    assert {r.file for r in loaded.refused} == set(expected) and loaded.skipped == []
    # The refusals are part of the checksum, so planting a link marks an index stale.
    assert loaded.checksum != load_corpus(SEEDS).checksum


def test_a_corpus_of_refused_files_only_is_a_clear_error(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "secret.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    (tmp_path / "corpus" / "a.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(CorpusError, match="no pages .* refused a.txt: link leaving the corpus"):
        load_corpus(tmp_path / "corpus")


def test_a_page_swapped_for_a_link_or_fifo_is_refused_when_opened(tmp_path):
    """The second lock: what discovery let through is opened without following links or blocking."""
    (tmp_path / "secret.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(CorpusError, match="link.txt is a link"):
        read_page(tmp_path / "link.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    outcome = []

    def read():
        try:
            read_page(tmp_path / "pipe.txt")
        except CorpusError as exc:
            outcome.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)  # a blocking read must not hang the tests
    reader.start()
    reader.join(timeout=10)
    assert outcome and "FIFO" in outcome[0], "reading a FIFO blocked or was not refused"


def test_check_page_refuses_a_path_through_a_folder_link(tmp_path):
    """For `rag add` and uploads: a path whose folder on the way is a link leaves the corpus."""
    (tmp_path / "corpus").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    (tmp_path / "corpus" / "sub").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "corpus" / "ok.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    refusal = check_page(tmp_path / "corpus" / "sub" / "x.txt", tmp_path / "corpus")
    assert refusal is not None and refusal.kind == "path leaving the corpus"
    assert check_page(tmp_path / "corpus" / "ok.txt", tmp_path / "corpus") is None


def test_a_folder_swapped_for_a_link_after_discovery_is_caught_at_read_time(tmp_path):
    corpus, outside = tmp_path / "corpus", tmp_path / "outside"
    (corpus / "sub").mkdir(parents=True)
    outside.mkdir()
    page = corpus / "sub" / "page.txt"
    page.write_text("# 标题\n\n正文内容。", encoding="utf-8")
    (outside / "page.txt").write_text(OUTSIDE_PAGE, encoding="utf-8")
    assert "正文内容" in read_page(page, corpus)
    shutil.rmtree(corpus / "sub")
    os.symlink(outside, corpus / "sub")  # the same path now leads outside through a folder link
    with pytest.raises(CorpusError, match="outside the corpus folder"):
        read_page(page, corpus)
