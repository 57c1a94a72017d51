/* Portal behaviour: search-as-you-type relation pickers and the caller look-up. */
(function ($) {
  "use strict";

  // Every select2 on a page speaks the page's language: FAB's own drop-downs are made with
  // select2's built-in English texts ("Remove all items"), so its English module takes the
  // portal's translated texts before any drop-down is made (this file loads after select2).
  (function translateSelect2() {
    var meta = document.querySelector('meta[name="picker-texts"]');
    if (!meta || !$.fn.select2 || !$.fn.select2.amd) { return; }
    var english = $.fn.select2.amd.require("select2/i18n/en");
    function text(key) { return function () { return meta.getAttribute("data-" + key) || ""; }; }
    english.searching = text("loading");
    english.loadingMore = text("loading-more");
    english.noResults = text("no-results");
    english.errorLoading = text("error");
    english.inputTooShort = text("input-too-short");
    english.removeAllItems = text("remove-all");
  })();

  function initAjaxSelect(el) {
    var $el = $(el);
    var depends = $el.data("depends");
    function text(key) { return function () { return $el.attr("data-text-" + key) || ""; }; }
    $el.select2({
      language: {
        searching: text("loading"),
        loadingMore: text("loading-more"),
        noResults: text("no-results"),
        errorLoading: text("error"),
        inputTooShort: text("input-too-short"),
        removeAllItems: text("remove-all")
      },
      theme: "bootstrap",
      width: "100%",
      allowClear: !$el.prop("multiple"),
      placeholder: $el.data("placeholder") || "",
      minimumInputLength: 0,
      ajax: {
        url: $el.data("url"),
        dataType: "json",
        delay: 250,
        data: function (params) {
          var query = { q: params.term || "", page: params.page || 1 };
          if (depends) {
            var value = $("#" + depends).val();
            if (value) { query[depends] = value; }
          }
          return query;
        },
        processResults: function (data) {
          return { results: data.results || [], pagination: data.pagination || { more: false } };
        }
      }
    });
    // select2 4.0 with jQuery 3.6 opens without focusing its search box: typing went nowhere.
    $el.on("select2:open", function () {
      var box = document.querySelector(".select2-container--open .select2-search__field");
      if (box) { box.focus(); }
    });
  }

  function escapeHtml(text) {
    return $("<div>").text(text == null ? "" : String(text)).html();
  }

  function initCallerHistory() {
    var $panel = $("#caller-history");
    var $phone = $("#customer_phone");
    if (!$panel.length || !$phone.length) { return; }
    var last = "";
    $phone.on("change blur", function () {
      var phone = $.trim($phone.val());
      if (!phone || phone === last) { return; }
      last = phone;
      $.getJSON($panel.data("url"), { phone: phone }).done(function (data) {
        var $body = $panel.find(".panel-body");
        if (!data.count) {
          $body.html('<span class="text-muted">' + escapeHtml($panel.data("none") || "—") + "</span>");
          return;
        }
        var rows = data.result.map(function (c) {
          return "<tr><td><a href='/complaintview/show/" + c.id + "'>" + escapeHtml(c.number) + "</a></td><td>" +
            escapeHtml(c.received_at.substring(0, 10)) + "</td><td>" + escapeHtml(c.department) + "</td><td>" +
            escapeHtml(c.category) + "</td><td>" + escapeHtml(c.status_label) + "</td></tr>";
        });
        $body.html("<table class='table table-condensed'>" + rows.join("") + "</table>");
        $panel.removeClass("panel-info").addClass("panel-warning");
      });
    });
  }

  $(function () {
    $("select.ajax-select").each(function () { initAjaxSelect(this); });
    initCallerHistory();
  });
})(jQuery);

/* Send the CSRF token with every AJAX request that changes something. */
(function ($) {
  var token = $('meta[name="csrf-token"]').attr("content");
  $.ajaxSetup({
    beforeSend: function (xhr, settings) {
      if (token && !/^(GET|HEAD|OPTIONS)$/i.test(settings.type)) { xhr.setRequestHeader("X-CSRFToken", token); }
    }
  });
  // Forms that ask before they submit (no inline handlers: the CSP forbids them).
  $(document).on("submit", "form[data-confirm]", function (event) {
    if (!window.confirm($(this).data("confirm"))) { event.preventDefault(); }
  });

})(jQuery);
