/* Forbidden service phrases (服务忌语): customer-facing texts are checked as they are typed.
 * Every <textarea data-phrase-check> is sent to POST /api/v1/reply-check a moment after the
 * user stops typing; the hits are shown under it, highlighted, with the suggested wording.
 * The server checks again on save; this only warns early. No external assets. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="phrase-check"]');
  if (!meta || !window.fetch) { return; }
  var url = meta.getAttribute("content");
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text != null) { node.textContent = text; }
    return node;
  }

  function panelFor(area) {
    if (!area._phrasePanel) {
      var panel = el("div", "phrase-hits");
      panel.setAttribute("role", "status");
      panel.hidden = true;
      area.parentNode.insertBefore(panel, area.nextSibling);
      area._phrasePanel = panel;
    }
    return area._phrasePanel;
  }

  function render(area, text, hits) {
    var panel = panelFor(area);
    var form = area.form;
    var confirm = form ? form.querySelector(".phrase-confirm") : null;
    panel.textContent = "";
    area.classList.toggle("phrase-flagged", hits.length > 0);
    if (confirm) { confirm.classList.toggle("phrase-confirm-needed", hits.length > 0); }
    if (!hits.length) { panel.hidden = true; return; }
    // Offsets are in characters (code points), as the server counts them.
    var chars = Array.from(text);
    var preview = el("div", "phrase-preview");
    var pos = 0;
    hits.forEach(function (h) {
      if (h.start < pos) { return; }
      preview.appendChild(document.createTextNode(chars.slice(pos, h.start).join("")));
      preview.appendChild(el("mark", null, chars.slice(h.start, h.end).join("")));
      pos = h.end;
    });
    preview.appendChild(document.createTextNode(chars.slice(pos).join("")));
    panel.appendChild(el("strong", null, meta.getAttribute("data-found")));
    panel.appendChild(preview);
    var list = el("ul", "phrase-list");
    hits.forEach(function (h) {
      var item = el("li");
      item.appendChild(el("mark", null, chars.slice(h.start, h.end).join("")));
      if (h.suggestion) {
        item.appendChild(document.createTextNode(" → " + meta.getAttribute("data-suggested") + h.suggestion));
      }
      list.appendChild(item);
    });
    panel.appendChild(list);
    panel.hidden = false;
  }

  function check(area) {
    var text = area.value;
    if (text === area._phraseLast) { return; }
    area._phraseLast = text;
    var seq = (area._phraseSeq || 0) + 1;
    area._phraseSeq = seq;
    if (!text.trim()) { render(area, text, []); return; }
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ text: text })
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && seq === area._phraseSeq) { render(area, text, data.hits || []); }
      })
      .catch(function () { /* the save-time check still applies */ });
  }

  function attach(area) {
    var timer = null;
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { check(area); }, 300);
    });
    if (area.value) { check(area); }
  }

  Array.prototype.forEach.call(document.querySelectorAll("textarea[data-phrase-check]"), attach);
})();
