// The page script (chatview.HEAD): a footnote click opens its card's full article and brings the
// highlighted passage into view; a card's quote box that scrolls opens on its supporting sentence.
(() => {
  // The quote box of a card scrolls (chat.css: max-height): scrolled so that its highlighted
  // supporting sentence sits in the middle of it. The box alone is scrolled (scrollIntoView would
  // scroll the sources panel and the page too), once per rendering of the card.
  function centreSupport(box) {
    const mark = box.querySelector('mark.rag-support');
    if (mark && !box.clientHeight) return;  // folded away: centred when it opens (the toggle below)
    box.dataset.ragCentred = '1';
    if (!mark || box.scrollHeight <= box.clientHeight) return;
    const offset = mark.getBoundingClientRect().top - box.getBoundingClientRect().top - box.clientTop;
    const room = box.clientHeight - Math.min(mark.getBoundingClientRect().height, box.clientHeight);
    box.scrollTop += offset - room / 2;
  }
  function centreAll(root) {
    for (const box of root.querySelectorAll('.rag-quote:not([data-rag-centred])')) centreSupport(box);
  }
  let pending = false;  // Gradio re-renders the panel as HTML: new cards, checked once a frame
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; centreAll(document); });
  }).observe(document.documentElement, {childList: true, subtree: true});
  function centre(details) {
    const body = details.querySelector('.rag-article-body');
    const mark = body && body.querySelector('mark.rag-passage');
    // Keep the headline in view when the passage is near the top; else bring the passage up.
    if (mark) body.scrollTop = mark.offsetTop + 40 > body.clientHeight ? mark.offsetTop - 24 : 0;
  }
  function reveal(id) {
    const card = document.getElementById(id);
    if (!card) return;
    for (let el = card.parentElement; el; el = el.parentElement) if (el.tagName === 'DETAILS') el.open = true;
    const article = card.querySelector('details.rag-article');
    if (article) { article.open = true; centre(article); }
    card.scrollIntoView({behavior: 'smooth', block: 'start'});
    card.classList.remove('rag-flash'); void card.offsetWidth; card.classList.add('rag-flash');
  }
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a.rag-cite');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    reveal(link.getAttribute('href').slice(1));
  }, true);
  document.addEventListener('toggle', (event) => {
    const d = event.target;
    if (d.matches && d.matches('details.rag-article') && d.open) centre(d);
    if (d.matches && d.matches('details') && d.open) centreAll(d);  // earlier questions, other passages
  }, true);
})();
