"""The chat window with a scripted chat model: rendering, escaping, streaming order, errors, API."""

from __future__ import annotations

import dataclasses
import re
import threading

import gradio as gr
import pytest
from langchain_core.messages import AIMessage

from rag.ingest.library import ArticleLibrary, find_span
from rag.app.chatview import Turn, answer_html, render_markers, sources_html
from rag.answer.cite import Citation
from rag.errors import BadQuestion, CorpusError, IndexMismatch, ModelUnavailable
from rag.answer.pipeline import Pipeline
from rag.search.retrieve import Passage, open_searcher
from rag.app.archive import archive_line
from rag.app.ui import ChatApp, build_app, launch

from fakes import ClosingChat, FailingOnceChat, GatedChat, scripted
from helpers import OUTSIDE_MARKER, QINGQUAN, SEEDS, free_port, plant_refused_files

QINGQUAN_HEADLINE = "山货触网 农户生活更红火"
HOSTILE_PAGE = """# 清泉村<script>window.PWNED=1</script>快讯

本报记者 测试

清泉村<img src=x onerror="window.PWNED=2">去年电商交易额超两亿元，*星号* _下划线_。
"""


@pytest.fixture
def searcher(settings, hash_embedder):
    return open_searcher(settings, embedder=hash_embedder, progress=False)


@pytest.fixture
def app_with(seed_settings, seed_searcher):
    """A ChatApp whose every pipeline answers with the given scripted replies."""
    settings, searcher = seed_settings, seed_searcher

    def build(*replies, chat=None):
        pipeline = Pipeline(settings, searcher, chat or scripted(*replies))
        # A question's own settings (model, passages) with the scripted model and the test index.
        return ChatApp(settings, pipeline_for=lambda chosen: Pipeline(chosen, searcher, pipeline.chat))

    return build


@pytest.fixture
def warnings(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: seen.append(message))
    return seen


def run(app: ChatApp, question: str, turns=None, model="qwen-1.5b", passages=4):
    return list(app.respond(question, turns or [], model, passages))


def final(updates):
    messages, sources, _, turns = updates[-1]
    return messages, sources, turns


# --------------------------------------------------------------------------- rendering


def test_answer_markers_link_to_cards_of_the_cited_passages(app_with):
    messages, sources, turns = final(run(app_with("清泉村去年交易额超两亿元[1]。"), QINGQUAN))
    answer = messages[1]["content"]
    assert '<a class="rag-cite" href="#src-1-1"' in answer and "rag-sourced" in answer
    assert 'id="src-1-1"' in sources and QINGQUAN_HEADLINE in sources
    card = sources.split('id="src-1-1"')[1]
    assert '<mark class="rag-support">' in card and "两亿元" in card.split('<mark class="rag-support">')[1]
    assert '<details class="rag-article">' in card and '<mark class="rag-passage">' in card
    assert turns[0].answer.citations[0].article == QINGQUAN_HEADLINE


def test_a_cited_section_is_named_under_its_story_and_the_story_shows_its_sub_headings(app_with):
    messages, sources, turns = final(run(app_with("水头镇投入近70万元建设和食堂[1]。"), "水头镇和食堂投入了多少钱？"))
    card = sources.split('id="src-1-1"')[1].split('class="rag-card rag-')[0]
    head = card.split('<span class="rag-headline">')[1].split("</span>")[0]
    assert head == "水头：用基层党建“撬动”民生幸福 › 强化党建“驱动力”，打开群众幸福门"
    story = card.split('<div class="rag-article-text">')[1]
    titles = re.findall(r'<strong class="rag-subhead">(.*?)</strong>', story)
    assert titles == ["强化党建“驱动力”，打开群众幸福门", "发挥党建“牵引力”，服务企业新发展", "激发党建“新活力”，开拓乡村致富路"]
    # The cited passage is highlighted under its own sub-heading, not wrapped around another one.
    first, passage = story.split('<mark class="rag-passage">')[0], story.split('<mark class="rag-passage">')[1]
    assert first.count('class="rag-subhead"') == 1 and 'class="rag-subhead"' not in passage.split("</mark>")[0]


def test_citation_numbers_are_matched_to_passages_by_chunk_id(settings):
    def passage(i):
        return Passage(f"text {i}", f"Headline {i}", "p.txt", i, 1.0, f"p:{i}:1", i, "article", None, 0, 6,
                       1.0, 0.0, i)

    passages = [passage(i) for i in (1, 2, 3)]
    # The LLM's context numbered passage 3 as [2] (a passage left out of the context shifts numbers).
    citation = Citation(2, "Headline 3", "p.txt", 3, "text 3", 0.9, True, "p:3:1")
    answer = type("A", (), dict(text="Claim[2].", citations=[citation], passages=passages, abstained=False,
                                unsupported_sentences=[], unverified_numbers=[], timings={}))()
    turn = Turn("q", answer=answer)
    html = sources_html([turn], lambda p: (_ for _ in ()).throw(CorpusError("gone")))
    card = html.split('id="src-1-2"')[1].split('class="rag-card rag-')[0]
    assert "Headline 3" in card and "Full article unavailable: gone" in card
    assert 'href="#src-1-2"' in answer_html(turn, 1)


@pytest.mark.parametrize("text, unsupported, supported", [
    ("清泉村交易额超两亿元[1]。全村有一千万人[?]。", "全村有一千万人", "清泉村交易额超两亿元"),
    ("Cangnan set up 48 alliances[1]. It has 12.5 million people[?].", "It has 12.5 million people",
     "Cangnan set up 48 alliances"),
])
def test_unsupported_sentences_are_marked(text, unsupported, supported):
    html = render_markers(text, {1: "src-1-1"})
    assert f'title="没有资料支持这句话 No passage supports this sentence">{unsupported}</span>' in html
    assert supported in html.split('<span class="rag-unsupported"')[0]
    assert html.count('class="rag-cite"') == 1 and "[?]" not in html


def test_refusal_looks_different_and_shows_the_nearest_passages(app_with):
    messages, sources, _ = final(run(app_with("The documents don't say."), "What was Qingquan's GDP in 1990?"))
    answer = messages[1]["content"]
    assert "rag-refusal" in answer and "Not in the pages" in answer and "rag-cite" not in answer
    assert "rag-nearest" in sources and "No passage answers this question" in sources


def test_hostile_document_text_is_escaped(settings, corpus_dir, hash_embedder):
    (corpus_dir / "999_hostile.md").write_text(HOSTILE_PAGE, encoding="utf-8")
    searcher = open_searcher(settings, embedder=hash_embedder, progress=False)
    pipeline = Pipeline(settings, searcher, scripted("清泉村去年电商交易额超两亿元[1]。"))
    app = ChatApp(settings, pipeline_for=lambda s: pipeline)
    messages, sources, turns = final(run(app, "清泉村<script>x</script>快讯说电商交易额是多少？"))
    assert any(p.source == "999_hostile.md" for p in turns[0].answer.passages)
    page = sources + "".join(m["content"] for m in messages)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;window.PWNED=1&lt;/script&gt;" in sources and "&lt;img src=x onerror=" in sources


def test_article_library_refuses_pages_the_corpus_does_not_have(settings, searcher):
    library = ArticleLibrary(settings.corpus_dir)
    for name in ("../../etc/passwd", "/etc/passwd", "seeds/../../x.txt", "missing.txt"):
        with pytest.raises(CorpusError, match="not a page of the corpus"):
            library.article(name, 1)
    passage = searcher.search(QINGQUAN, 1)[0]
    with pytest.raises(CorpusError, match="no article number"):
        library.article(passage.source, 999)
    article, span = library.locate(passage)
    assert article.headline == passage.article and article.text[span[0]:span[1]] == passage.text
    assert find_span("甲乙丙。", "乙丙。 ") == (1, 4) and find_span("甲", "丁") is None


def test_article_view_refuses_links_and_a_page_turned_into_a_link(settings, corpus_dir, tmp_path, searcher):
    expected = plant_refused_files(corpus_dir, tmp_path / "outside")
    library = ArticleLibrary(corpus_dir)
    for name in ("902_passwd.txt", "904_again.txt", "906_pipe.txt"):
        with pytest.raises(CorpusError, match=f"not a page of the corpus .*: refused, {re.escape(expected[name])}"):
            library.article(name, 1)
    with pytest.raises(CorpusError, match="not a page of the corpus"):
        library.article("903_outside/905_page.txt", 1)
    passage = searcher.search(QINGQUAN, 1)[0]
    assert library.article(passage.source, passage.article_no).headline == passage.article  # cached now
    page = corpus_dir / passage.source
    page.unlink()
    page.symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(CorpusError, match="refused, link leaving the corpus") as refused:
        library.article(passage.source, 1)
    assert OUTSIDE_MARKER not in str(refused.value) and "secret.txt" not in str(refused.value)


# --------------------------------------------------------------------------- streaming and errors


def test_sources_appear_before_the_first_token_then_narrow_to_the_cited(app_with):
    gate = threading.Event()
    chat = GatedChat(messages=iter([AIMessage(content="清泉村去年交易额超两亿元[1]。")]), seen=[], gate=gate)
    updates = app_with(chat=chat).respond(QINGQUAN, [], "qwen-1.5b", 4)
    first = next(updates)
    assert "rag-pending" in first[0][1]["content"] and first[2]["interactive"] is False
    messages, sources, _, _ = next(updates)  # the passages, while the model has not written a word
    assert sources.count('class="rag-card rag-retrieved"') == 5 and "the answer is being written" in sources
    assert "reading the passages" in messages[1]["content"]
    gate.set()
    messages, sources, textbox, turns = list(updates)[-1]
    assert sources.count('class="rag-card rag-cited"') == 1 and "Other retrieved passages (4)" in sources
    assert textbox["interactive"] is True and turns[0].answer.text == "清泉村去年交易额超两亿元[1]。"


def test_leaving_mid_answer_closes_the_llms_stream(app_with):
    chat = ClosingChat(messages=iter([AIMessage(content="清泉村去年交易额超两亿元，全村三百多人做电商[1]。")]),
                       seen=[], closed=[])
    updates = app_with(chat=chat).respond(QINGQUAN, [], "qwen-1.5b", 4)
    for messages, *_ in updates:
        if "rag-streaming" in messages[1]["content"]:
            break  # the model has written its first words
    assert chat.closed == []
    updates.close()  # what Gradio does when the user clears the chat or leaves the page
    assert chat.closed == [True]


def test_follow_up_shows_the_rewritten_query(app_with):
    app = app_with("清泉村去年交易额超两亿元[1]。", "清泉村去年的电商交易额是多少？", "交易额超两亿元[1]。")
    _, _, turns = final(run(app, QINGQUAN))
    updates = run(app, "那去年呢？", turns)
    assert "reading the conversation" in updates[0][0][3]["content"] and "Rewriting the follow-up" in updates[0][1]
    messages, sources, turns = final(updates)
    assert len(turns) == 2 and 'searched as: 清泉村去年的电商交易额是多少？' in messages[2]["content"]
    assert 'href="#src-2-1"' in messages[3]["content"] and 'href="#src-1-1"' in messages[1]["content"]
    assert "Earlier questions" in sources and 'id="src-1-1"' in sources and 'id="src-2-1"' in sources


@pytest.mark.parametrize("question", ["", "   ", "问" * 20_000])
def test_bad_question_is_a_warning_on_the_page_an_error_for_chat_callers(app_with, warnings, question):
    updates = run(app_with("x"), question)  # the page: a warning naming the field, nothing changes
    assert len(updates) == 1 and all(isinstance(u, type(gr.skip())) for u in updates[0])
    assert len(warnings) == 1 and re.match("question: .*(empty|limit)", warnings[0]), warnings
    turns = []
    with pytest.raises(gr.Error) as refused:  # `/chat`: the caller gets the message as an error
        list(app_with("x").chat(question, turns, "qwen-1.5b", 4))
    assert refused.value.message == warnings[0] and refused.value.print_exception is False and turns == []


@pytest.mark.parametrize("error, shown", [
    (ModelUnavailable("the LLM is missing; run `rag models`"), "run `rag models`"),
    (RuntimeError("boom in /srv/secret"), "something went wrong on the server (RuntimeError)"),
])
def test_pipeline_errors_are_warnings_not_tracebacks(settings, warnings, error, shown):
    def broken(_settings):
        raise error

    messages, sources, turns = final(run(ChatApp(settings, pipeline_for=broken), QINGQUAN))
    assert shown in warnings[0] and "rag-failed" in messages[1]["content"] and shown in messages[1]["content"]
    assert "Traceback" not in messages[1]["content"] and turns[0].error and "/srv" not in messages[1]["content"]


def test_settings_take_effect_per_question(settings):
    app = ChatApp(settings)
    assert app.settings_for("qwen-1.5b", settings.llm_passages) is settings
    chosen = app.settings_for("fast", 8)
    assert chosen.llm_model == "fast" and chosen.llm_passages == 8 and chosen.top_k == 8
    assert app.settings_for(None, 2).top_k == settings.top_k
    for model, passages in (("/etc/passwd", 4), ("fast", 0.5), ("fast", 11)):
        with pytest.raises(BadQuestion):
            app.settings_for(model, passages)


# --------------------------------------------------------------------------- the running app


@pytest.mark.slow  # slow tier: a served app
def test_running_app_serves_ask_and_keeps_sessions_apart(settings, searcher):
    from gradio_client import Client

    pipeline = Pipeline(settings, searcher, scripted(*["清泉村去年交易额超两亿元[1]。"] * 6))
    demo = build_app(settings, pipeline_for=lambda s: pipeline)
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        result = Client(url, verbose=False).predict(question=QINGQUAN, api_name="/ask")
        assert not result["abstained"] and result["citations"][0]["article"] == QINGQUAN_HEADLINE
        assert result["text"] == "清泉村去年交易额超两亿元[1]。" and "ttft_s" in result["timings"]
        first, second = Client(url, verbose=False), Client(url, verbose=False)
        first.predict(QINGQUAN, "qwen-1.5b", 4, api_name="/chat")
        messages, _, _ = first.predict("清泉村有多少人做电商？", "qwen-1.5b", 4, api_name="/chat")
        alone, _, _ = second.predict(QINGQUAN, "qwen-1.5b", 4, api_name="/chat")
        assert len(messages) == 4 and len(alone) == 2
        with pytest.raises(Exception, match="unknown model"):
            Client(url, verbose=False).predict(question=QINGQUAN, model="../x.gguf", api_name="/ask")
    finally:
        demo.close()


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_bad_input_through_the_api_gets_a_message_and_the_app_keeps_serving(settings, searcher):
    import urllib.error
    import urllib.request

    from gradio_client import Client

    reply = "清泉村去年交易额超两亿元[1]。"
    chat = scripted(reply, reply)
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, searcher, chat))
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        client = Client(url, verbose=False)
        for question, message in (("", "empty"), (" \u200b\t", "empty"), ("问" * 200_000, "200,000 characters"),
                                  ("？！…", "no words"), ("\x00\x1b", "empty")):
            with pytest.raises(Exception, match=message):
                client.predict(question=question, api_name="/ask")
        for passages in (500, -1):  # the API's k
            with pytest.raises(Exception, match="passages: must be a whole number from 1 to"):
                client.predict(question=QINGQUAN, passages=passages, api_name="/ask")
        request = urllib.request.Request(f"{url.rstrip('/')}/gradio_api/call/ask", method="POST",
                                         data=b'{"data": ["\xff\xfe\xc3("]}',
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:  # invalid UTF-8 on the wire
            urllib.request.urlopen(request, timeout=30)
        assert 400 <= refused.value.code < 500
        assert client.predict(question=QINGQUAN, api_name="/ask")["text"] == reply  # still serving
    finally:
        demo.close()


@pytest.mark.slow  # slow tier: a served app (seconds)
def test_an_llm_failing_mid_answer_is_shown_and_the_app_keeps_serving(settings, searcher):
    from gradio_client import Client

    reply = "清泉村去年交易额 超两亿元[1]。"  # the fake streams it in two pieces
    chat = FailingOnceChat(messages=iter([AIMessage(content=reply)] * 3), seen=[], failed=[])
    demo = build_app(settings, pipeline_for=lambda s: Pipeline(s, searcher, chat))
    url = launch(demo, port=free_port(), prevent_thread_lock=True)
    try:
        client = Client(url, verbose=False)
        messages, _, _ = client.predict(QINGQUAN, "qwen-1.5b", 4, api_name="/chat")
        content = messages[1]["content"]
        shown = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
        assert chat.failed and "rag-failed" in shown and "Traceback" not in shown
        assert "something went wrong on the server (ConnectionError)" in shown  # the kind, not the server's text
        assert "went away" not in shown
        result = Client(url, verbose=False).predict(question=QINGQUAN, api_name="/ask")
        assert result["text"] == reply and not result["abstained"]  # still serving
    finally:
        demo.close()


def test_status_line_names_refused_files_and_nothing_outside_is_shown(settings, corpus_dir, tmp_path, hash_embedder):
    plant_refused_files(corpus_dir, tmp_path / "outside")
    searcher = open_searcher(settings, embedder=hash_embedder, progress=False)
    pipeline = Pipeline(settings, searcher, scripted("机密档案的编号不详[1]。"))
    app = ChatApp(settings, pipeline_for=lambda s: pipeline)
    line = app.status()
    assert ("4 files refused: 902_passwd.txt (link leaving the corpus), "
            "903_outside (link to a folder leaving the corpus), 904_again.txt (link inside the corpus) "
            "and 1 more") in line
    assert "secret.txt" not in line and str(tmp_path) not in line  # the kind, never the link's target
    messages, sources, turns = final(run(app, "机密档案秘密文件的编号是多少？"))
    assert OUTSIDE_MARKER not in sources + "".join(m["content"] for m in messages)
    assert all(p.source in {q.name for q in SEEDS.glob("*.txt")} for p in turns[0].answer.passages)


def test_status_line_names_the_index_or_what_to_do(app_with, settings, warnings):
    assert "files ·" in app_with("x").status() and "embedder hash-256" in app_with("x").status()

    def missing(_settings):
        raise IndexMismatch("the index is damaged; run `rag index`")

    line = ChatApp(settings, pipeline_for=missing).status()
    assert "⚠ the index is damaged; run `rag index`" in line and warnings == ["the index is damaged; run `rag index`"]


def test_status_line_names_the_archive(app_with, seed_searcher):
    index = seed_searcher.index.status()
    line = app_with("x").status()
    assert line.startswith(f'<div class="rag-statusline">档案 Archive: {index.articles:,} articles')
    assert line.index("档案 Archive") < line.index("<br>索引 Index: ")  # the archive first, the index under it
    archive = dataclasses.replace(index, articles=10_000, outlets=3, first_date="2023-01-01", last_date="2023-07-31")
    assert archive_line(archive) == "档案 Archive: 10,000 articles · 3 outlets · 2023-01-01 – 2023-07-31"
    one_day = dataclasses.replace(archive, outlets=1, first_date="--07-28", last_date="--07-28")
    assert archive_line(one_day) == "档案 Archive: 10,000 articles · 1 outlet · 07-28 (year unknown)"
    assert archive_line(dataclasses.replace(archive, outlets=0, first_date=None)) == "档案 Archive: 10,000 articles"
