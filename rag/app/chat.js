// The page script (chatview.HEAD): a footnote click opens its card's full article and brings the
// highlighted passage into view.
(() => {
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
  }, true);
})();
