"""The running chat app with the bundled models: gradio_client, a real browser, five users at once."""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from rag.config import Settings
from rag.ingest.corpus import load_corpus
from rag.answer.pipeline import get_pipeline
from rag.app.feedback import FEEDBACK_FILE, FeedbackStore
from rag.app.ui import build_app, launch

from helpers import ROOT, free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# Questions from eval/sets/public.jsonl, each about a different article (headline = the set's "article").
QUESTIONS = ["zh-number-022", "zh-entity-006", "zh-number-015", "zh-number-020", "zh-entity-004"]


def seed_items() -> dict[str, dict]:
    lines = (ROOT / "eval" / "sets" / "public.jsonl").read_text(encoding="utf-8").splitlines()
    items = {item["id"]: item for item in map(json.loads, lines)}
    articles = load_corpus(ROOT / "seeds").articles
    # A gold name is a story's headline or, inside a sectioned story, its sub-heading.
    headlines = {a.headline for a in articles} | {title for a in articles for _, title in a.subheads}
    for key in QUESTIONS:
        assert items[key]["article"] in headlines, f"{key}: its article is not a headline of the seed pages"
    return items


@pytest.fixture(scope="module")
def kept_dir(tmp_path_factory) -> Path:
    """Where the served app keeps its ratings (not the real cache's, which holds the models)."""
    return tmp_path_factory.mktemp("kept")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, kept_dir):
    base = tmp_path_factory.mktemp("chat")
    shutil.copytree(ROOT / "seeds", base / "seeds")
    settings = Settings.from_env(corpus_dir=base / "seeds", index_dir=base / "vectorstore")
    get_pipeline(settings).load()  # builds the index and loads the LLM
    demo = build_app(settings, uploads=True, keep_dir=kept_dir)  # on loopback, as `rag chat` serves it there
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    yield url
    demo.close()


CITED_HEADLINE = re.compile(r'class="rag-card rag-cited".*?<span class="rag-headline">'
                            r'(?:<span class="rag-kicker">.*?</span> )?(.*?)</span>')


def names(shown: str, gold: str) -> bool:
    """A cited label ("headline" or "headline › sub-heading") names the gold article or section."""
    return shown == gold or shown.split(" › ")[0] == gold or shown.endswith(" › " + gold)


def cited_headlines(sources_html: str) -> list[str]:
    """Headlines of the cited cards of the latest question."""
    return [html.unescape(h) for h in CITED_HEADLINE.findall(sources_html.split("rag-earlier-head")[0])]


def test_gradio_client_gets_an_answer_citing_the_right_article(app_url):
    from gradio_client import Client

    item = seed_items()["zh-number-022"]
    result = Client(app_url, verbose=False).predict(question=item["question"], api_name="/ask")
    assert not result["abstained"], result["text"]
    assert any(names(c.get("label") or c["article"], item["article"]) for c in result["citations"]), result["citations"]
    assert all(c["supported"] and c["quote"] for c in result["citations"])


# Each quote box holding a supporting sentence: the boxes of the sentence and of its scroll container.
SUPPORT_BOXES = """() => [...document.querySelectorAll('#rag-sources .rag-quote')].filter(b => b.querySelector(
    'mark.rag-support')).map(b => { const m = b.querySelector('mark.rag-support').getBoundingClientRect(),
    q = b.getBoundingClientRect(); return {box: [q.top, q.bottom], mark: [m.top, m.bottom],
    scrolls: b.scrollHeight > b.clientHeight, id: b.closest('.rag-card').id}; })"""
# A card whose supporting sentence comes after 40 lines of its quote box: it opens scrolled to it.
LONG_CARD = """() => { const card = document.createElement('div'); card.className = 'rag-card rag-cited';
    card.id = 'src-test-long'; card.innerHTML = '<div class="rag-quote">' + '前文的一句话，'.repeat(400) +
    '<mark class="rag-support">这是支持回答的那一句。</mark>' + '后文。'.repeat(20) + '</div>';
    const panel = document.querySelector('#rag-sources .rag-sources');
    const before = [window.scrollY, document.querySelector('#rag-sources').scrollTop];
    panel.appendChild(card); return before; }"""


def inside(found: dict) -> bool:
    """The supporting sentence lies within the visible part of its quote box (a pixel of slack)."""
    (top, bottom), (mark_top, mark_bottom) = found["box"], found["mark"]
    if mark_bottom - mark_top > bottom - top:  # longer than the box: it starts at its top
        return abs(mark_top - top) <= 2
    return mark_top >= top - 1 and mark_bottom <= bottom + 1


def test_browser_streams_the_answer_and_opens_the_cited_article(app_url, kept_dir, tmp_path):
    """The page from question to cited article; then what it keeps: the supporting sentence inside
    each card's quote box, a 👍 with a comment in the ratings database, the conversation back
    after a reload."""
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (bash .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
            (app_url.rstrip("/"), "data:", "blob:")) else None)
        page.goto(app_url)
        page.fill("#rag-question textarea", "清泉村去年电商交易额是多少？")
        page.keyboard.press("Enter")
        # Evidence first: the retrieved passages are listed while the answer is still being written.
        page.wait_for_selector("#rag-sources .rag-card.rag-retrieved", timeout=60_000)
        assert page.locator("#rag-chat .rag-answer.rag-sourced, #rag-chat .rag-answer.rag-partial").count() == 0
        page.wait_for_selector("#rag-chat .rag-answer.rag-sourced, #rag-chat .rag-answer.rag-partial",
                               timeout=240_000)
        page.wait_for_timeout(500)  # the page script centres the quote boxes on the next frame
        supports = page.evaluate(SUPPORT_BOXES)
        before = page.evaluate(LONG_CARD)
        page.wait_for_selector("#src-test-long .rag-quote[data-rag-centred]", timeout=5_000)
        long_card = [f for f in page.evaluate(SUPPORT_BOXES) if f["id"] == "src-test-long"][0]
        after = page.evaluate("() => [window.scrollY, document.querySelector('#rag-sources').scrollTop]")
        page.evaluate("() => document.getElementById('src-test-long').remove()")
        link = page.locator("#rag-chat a.rag-cite").first
        card_id = link.get_attribute("href").lstrip("#")
        link.click()
        passage = page.locator(f"#{card_id} details.rag-article[open] mark.rag-passage")
        passage.wait_for(state="visible", timeout=10_000)
        headline = page.locator(f"#{card_id} .rag-headline").inner_text()
        title = page.locator(f"#{card_id} .rag-article-title").inner_text()
        highlighted = passage.inner_text()
        article = page.locator(f"#{card_id} .rag-article-text").inner_text()
        page.wait_for_timeout(800)  # let the smooth scroll finish before the screenshot
        page.screenshot(path=str(tmp_path / "chat-article.png"))
        page.locator("#rag-chat .rag-answer").last.hover()  # the message's buttons may show on hover only
        page.locator('#rag-chat button[aria-label="Like"]').last.click()
        page.locator("#rag-comment textarea").wait_for(state="visible", timeout=10_000)
        page.fill("#rag-comment textarea", "数字和出处都对 · right figure, right page")
        page.screenshot(path=str(tmp_path / "chat-feedback.png"))
        page.locator("#rag-comment textarea").press("Enter")
        rows = wait_for_rows(FeedbackStore(kept_dir / FEEDBACK_FILE), lambda r: r["comment"])
        page.reload()
        page.wait_for_selector("#rag-chat .rag-answer.rag-sourced, #rag-chat .rag-answer.rag-partial", timeout=30_000)
        page.wait_for_selector("#rag-sources .rag-card.rag-cited", timeout=10_000)
        kept_question = page.locator("#rag-chat .rag-question").first.inner_text()
        with page.expect_download(timeout=15_000) as download:
            page.locator("#rag-export").click()
        markdown = Path(download.value.path()).read_text(encoding="utf-8")
        browser.close()
    assert headline.endswith(title) and len(highlighted) > 20 and highlighted in article
    assert len(article) > len(highlighted)
    assert (tmp_path / "chat-article.png").stat().st_size > 10_000
    assert outside == [], f"the page reached outside the app: {outside}"
    # The supporting sentence inside the visible part of each quote box, without moving the page.
    assert supports and all(inside(f) for f in supports), supports
    assert long_card["scrolls"] and inside(long_card) and after == before, (long_card, before, after)
    # The 👍 and its comment in the ratings database; the conversation back after the reload.
    question = "清泉村去年电商交易额是多少？"
    assert len(rows) == 1 and rows[0]["rating"] == 1 and rows[0]["question"] == question
    assert rows[0]["comment"] == "数字和出处都对 · right figure, right page" and rows[0]["citations"]
    assert kept_question == question
    # The exported conversation: the question, and every source the answer cites with its quote.
    shown = html.unescape(re.sub(r"<[^>]+>", "", MarkdownIt("commonmark").render(markdown)))  # as a reader sees it
    assert f"1. {question}" in shown
    for citation in rows[0]["citations"]:
        assert citation["source"] in shown and citation["quote"].split()[0] in shown


def wait_for_rows(store: FeedbackStore, ready, seconds: float = 15) -> list[dict]:
    """The store's rows once one is ``ready`` (the page's events are asynchronous), else as they are."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = store.rows()
        if any(ready(r) for r in rows):
            return rows
        time.sleep(0.2)
    return store.rows()


def test_five_users_at_once_each_get_their_own_answer(app_url):
    from gradio_client import Client

    items = seed_items()

    def converse(key: str):
        started = time.perf_counter()
        defaults = Settings.from_env()
        messages, sources, _ = Client(app_url, verbose=False).predict(
            items[key]["question"], defaults.llm_model, defaults.llm_passages, api_name="/chat")
        return key, messages, sources, time.perf_counter() - started

    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        results = list(pool.map(converse, QUESTIONS))
    for key, messages, sources, seconds in results:
        print(f"{key}: {seconds:.1f} s")
        asked = [m for m in messages if m["role"] == "user"]
        assert len(asked) == 1 and items[key]["question"] in str(asked[0]["content"]), key
        assert any(names(h, items[key]["article"]) for h in cited_headlines(sources)), \
            (key, str(messages[-1]["content"])[:300])


def test_browser_uploads_a_dump_and_asks_within_a_filter(app_url, tmp_path):
    """The filter and the upload on the page (the app is served on loopback, where it offers the
    upload): a dated dump uploaded, then a question limited to its date and outlet finds it."""
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (bash .ci/run does it)")
    from playwright.sync_api import sync_playwright

    dump = tmp_path / "新华社-2023-07-31.txt"  # news-cn, news-020.txt line 834, cut after a sentence
    dump.write_text("2023-07-31 09:40，正文：新华社北京7月31日电 以色列总理本雅明·内塔尼亚胡30日说，以政府打算斥资1000亿"
                    "新谢克尔（约合270亿美元）扩建铁路网络，有意将线路延伸至周边阿拉伯国家。\n", encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(app_url)
        page.get_by_text("添加资料 · Add files to the archive").click()
        page.locator("#rag-upload input[type=file], input[type=file]").first.set_input_files(str(dump))
        page.wait_for_selector(f"#rag-upload-note:has-text('已添加 added 1: {dump.name}')", timeout=120_000)
        page.get_by_text("筛选 · Filter by date and outlet").click()
        page.locator("#rag-date-from textarea, #rag-date-from input").first.fill("2023-07-31")
        page.locator("#rag-date-to textarea, #rag-date-to input").first.fill("2023-07-31")
        page.locator("#rag-date-to textarea, #rag-date-to input").first.press("Enter")
        page.wait_for_selector("#rag-filter-line:has-text('只看 only 2023-07-31 – 2023-07-31')", timeout=60_000)
        page.fill("#rag-question textarea", "以色列政府打算斥资多少扩建铁路网络？")
        page.keyboard.press("Enter")
        page.wait_for_selector("#rag-sources .rag-card.rag-retrieved", timeout=60_000)
        sources = page.locator("#rag-sources").inner_html()
        browser.close()  # the answer itself is not waited for: closing stops it
    assert "只看 only 2023-07-31 – 2023-07-31" in sources and dump.name in sources
    assert sources.count('class="rag-card rag-retrieved"') == 1  # the one article the filter leaves
