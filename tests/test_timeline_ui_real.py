"""The chat's Timeline tab in a real browser, with the bundled embedder over a small dated dump: a
topic typed, the chart drawn, a period picked from the menu, an entry's article opened
(screenshot: eval/screenshots/timeline.png)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.answer.pipeline import Pipeline
from rag.app.ui import build_app, launch
from rag.config import Settings
from rag.search.retrieve import open_searcher

from fakes import scripted
from helpers import ROOT, free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "eval" / "screenshots" / "timeline.png"
LINES = [
    "2023-07-18 09:00，正文：中新网北京7月18日电 中央气象台18日继续发布高温黄色预警，华北黄淮等地最高气温达到37℃至39℃。",
    "2023-07-21 10:00，正文：新华社北京7月21日电 今年第5号台风“杜苏芮”今天上午在菲律宾以东洋面生成，中央气象台预计它将向西偏北方向移动。",
    "2023-07-25 08:30，正文：京东集团发布第二季度财报，营收同比增长7.6%，净利润超过市场预期。",
    "2023-07-26 14:00，正文：中央气象台26日10时发布台风红色预警，台风“杜苏芮”将于28日在福建到广东一带沿海登陆。",
    "2023-07-28 11:00，正文：中新网福州7月28日电 台风“杜苏芮”28日9时55分在福建晋江沿海登陆，登陆时中心附近最大风力15级，"
    "福建全省启动防台风一级应急响应，沿海渔船全部回港避风。",
    "2023-07-31 16:20，正文：受台风“杜苏芮”残余环流影响，京津冀地区7月29日以来遭遇极端强降雨，北京门头沟、房山等地发生山洪。",
    "2023-08-03 12:00，正文：成都大运会赛程过半，中国代表团金牌数领先。",
    "2023-08-06 09:40，正文：福建省公布台风“杜苏芮”灾后重建方案，将安排专项资金修复受损道路和海堤。",
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    base = tmp_path_factory.mktemp("timeline")
    (base / "news").mkdir()
    (base / "news" / "news-001.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    settings = Settings.from_env(corpus_dir=base / "news", index_dir=base / "vectorstore")
    searcher = open_searcher(settings, progress=False)  # the bundled embedder; the timeline needs no LLM
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, searcher, scripted()), keep_dir=base / "keep")
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    yield url
    demo.close()


def test_the_timeline_tab_charts_a_topic_and_opens_an_entrys_article(app_url):
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `apt-get install -y chromium` (bash .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(
            (app_url.rstrip("/"), "data:", "blob:")) else None)
        page.goto(app_url)
        page.get_by_role("tab", name="时间线 Timeline").click()
        topic = page.locator("#rag-timeline-topic textarea, #rag-timeline-topic input").first
        topic.fill("台风杜苏芮")
        topic.press("Enter")
        page.wait_for_selector("#rag-timeline-entries .rag-card", timeout=60_000)
        summary = page.locator("#rag-timeline-summary").inner_text()
        all_cards = page.locator("#rag-timeline-entries .rag-card").count()
        page.locator("#rag-timeline-chart canvas, #rag-timeline-chart svg").first.wait_for(timeout=20_000)
        # A period from the menu: only its entry is listed.
        page.locator("#rag-timeline-period input").click()
        page.get_by_role("option", name="2023-07-28").click()
        page.wait_for_function("document.querySelectorAll('#rag-timeline-entries .rag-card').length == 1",
                               timeout=20_000)
        card = page.locator("#rag-timeline-entries .rag-card").first
        quote = card.locator("mark.rag-support").first.inner_text()
        card.locator("details.rag-article summary").click()
        article = card.locator("details.rag-article[open] .rag-article-text")
        article.wait_for(state="visible", timeout=10_000)
        text = article.inner_text()
        page.wait_for_timeout(500)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    assert "5 条 entries" in summary and all_cards == 5
    assert "登陆" in quote and quote in text and "晋江" in text
    assert SCREENSHOT.stat().st_size > 20_000
    assert outside == [], f"the page reached outside the app: {outside}"
