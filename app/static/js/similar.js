/* Intake: similar open cases and suggested category / department (suggestions only: 客服 decides). */
(function () {
  "use strict";

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function field(name) {
    return document.getElementById(name) || document.querySelector("[name='" + name + "']");
  }

  function applySuggestion(name, id, label) {
    var select = field(name);
    if (!select) { return; }
    var value = String(id);
    var exists = Array.prototype.some.call(select.options || [], function (o) { return o.value === value; });
    if (!exists) { select.appendChild(new Option(label, value)); }
    select.value = value;
    if (window.jQuery) { window.jQuery(select).val(value).trigger("change"); }
    else { select.dispatchEvent(new Event("change", { bubbles: true })); }
  }

  function render(panel, data) {
    var list = panel.querySelector(".similar-list");
    if (!data.count) {
      list.innerHTML = '<span class="text-muted">' + escapeHtml(panel.dataset.none) + "</span>";
      panel.classList.remove("panel-warning");
    } else {
      var rows = data.result.map(function (c) {
        return "<tr><td><a href='/complaintview/show/" + encodeURIComponent(c.id) + "'>" + escapeHtml(c.number) +
          "</a><br><small>" + escapeHtml(c.subject) + "</small></td><td>" + escapeHtml(c.department.name) +
          "</td><td>" + escapeHtml(Math.round(c.score * 100)) + "%</td><td><small>" +
          escapeHtml(c.shared_words.join("、")) + "</small></td></tr>";
      });
      list.innerHTML = "<table class='table table-condensed'><tr><th></th><th>" + escapeHtml(panel.dataset.department) +
        "</th><th></th><th>" + escapeHtml(panel.dataset.shared) + "</th></tr>" + rows.join("") + "</table>";
      panel.classList.add("panel-warning");
    }
    var footer = panel.querySelector(".similar-suggestions");
    var s = data.suggestions || {};
    var parts = [];
    [["category", panel.dataset.category], ["department", panel.dataset.department]].forEach(function (pair) {
      var hit = s[pair[0]];
      if (!hit) { return; }
      parts.push(escapeHtml(pair[1]) + ": <strong>" + escapeHtml(hit.name) + "</strong> " +
        "<button type='button' class='btn btn-default btn-xs similar-apply' data-field='" + pair[0] +
        "' data-id='" + escapeHtml(hit.id) + "' data-label='" + escapeHtml(hit.name) + "'>" +
        escapeHtml(panel.dataset.apply) + "</button>");
    });
    footer.hidden = !parts.length;
    footer.innerHTML = parts.length ? escapeHtml(panel.dataset.suggested) + "<br>" + parts.join("<br>") : "";
  }

  function init() {
    var panel = document.getElementById("similar-cases");
    var content = field("content");
    if (!panel || !content) { return; }
    var subject = field("subject");
    var last = "";
    var timer = null;
    function query() {
      var text = ((subject && subject.value) || "") + "\n" + (content.value || "");
      if (!text.trim() || text === last) { return; }
      last = text;
      fetch(panel.dataset.url + "?text=" + encodeURIComponent(text.slice(0, 2000)), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data) { render(panel, data); } });
    }
    [content, subject].forEach(function (el) {
      if (!el) { return; }
      el.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(query, 600); });
      el.addEventListener("change", query);
    });
    panel.addEventListener("click", function (event) {
      var button = event.target.closest(".similar-apply");
      if (button) { applySuggestion(button.dataset.field, button.dataset.id, button.dataset.label); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
