/* Dashboard: KPI cards and ECharts charts from /api/v1/dashboard/data; click a chart to open the list. */
(function ($) {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var labels = JSON.parse(root.getAttribute("data-labels"));
  var palette = ["#1f3a5f", "#c0392b", "#2e86c1", "#f39c12", "#27ae60", "#8e44ad", "#16a085", "#d35400", "#7f8c8d"];

  function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
  function esc(t) { return $("<div>").text(t === null || t === undefined ? "" : String(t)).html(); }

  function card(title, value, detail, extra) {
    return '<div class="col-md-3 col-sm-4 col-xs-6"><div class="kpi-card">' +
      '<div class="kpi-title">' + esc(title) + '</div><div class="kpi-value">' + esc(value) + '</div>' +
      '<div class="kpi-detail">' + esc(detail || "") + (extra ? " " + extra : "") + '</div></div></div>';
  }

  function rateCard(key, r) {
    if (!r) { return ""; }
    // No base to divide by (e.g. no customer count entered): say why there is no rate.
    var detail = r.denominator ? r.numerator + " / " + r.denominator :
      (labels["no_base_" + key] || labels.no_base) + "（" + r.numerator + " / " + r.denominator + "）";
    return card(labels[key], pct(r.value), detail);
  }

  function changeBadge(c) {
    if (c === null || c === undefined) { return ""; }
    var cls = c > 0 ? "text-danger" : "text-success";
    return '<span class="' + cls + '">' + (c > 0 ? "▲" : "▼") + " " + Math.abs(c * 100).toFixed(1) + "% " + esc(labels.vs_previous) + "</span>";
  }

  function renderCards(d) {
    var k = d.kpis || {};
    var html = card(labels.received, k.received === undefined ? "—" : k.received, d.previous ? d.previous.label : "", changeBadge(d.received_change));
    if (d.open) {
      html += card(labels.open, d.open.open, labels.overdue + " " + d.open.overdue);
    }
    ["on_time_closure_rate", "satisfaction_rate", "valid_rate", "repeat_rate", "first_time_closure_rate", "complaint_rate"].forEach(function (key) {
      if (k[key]) { html += rateCard(key, k[key]); }
    });
    if (k.average_handling_hours) {
      var h = k.average_handling_hours;
      html += card(labels.average_handling_hours, h.value === null ? "—" : h.value.toFixed(1), h.numerator + " " + labels.hours + " / " + h.denominator + " " + labels.cases);
    }
    $("#kpi-cards").html(html);
  }

  function localTime(day) { return day + " 00:00:00"; }

  function drillUrl(chart, item, index, period) {
    var base = "/complaintview/list/?";
    var range = "&_flt_1_received_at=" + encodeURIComponent(localTime(period.start)) +
      "&_flt_2_received_at=" + encodeURIComponent(localTime(period.end));
    switch (chart.drill) {
      case "department": return base + "_flt_0_department=" + item.id + range;
      case "category": return base + "_flt_0_category=" + item.id + range;
      case "channel": return base + "_flt_0_channel=" + item.id + range;
      case "level": return base + "_flt_0_level=" + item.id + range;
      case "status": return base + "_flt_0_status=" + encodeURIComponent(item.id) + range;
      case "received":
        var r = (chart.ranges || [])[index];
        if (!r) { return null; }
        return base + "_flt_1_received_at=" + encodeURIComponent(localTime(r.start)) + "&_flt_2_received_at=" + encodeURIComponent(localTime(r.end));
      case "age":
        var now = new Date();
        function ago(days) {
          var t = new Date(now.getTime() - days * 86400000);
          var pad = function (n) { return (n < 10 ? "0" : "") + n; };
          return t.getFullYear() + "-" + pad(t.getMonth() + 1) + "-" + pad(t.getDate()) + " " + pad(t.getHours()) + ":" + pad(t.getMinutes()) + ":00";
        }
        var url = base + "_flt_2_received_at=" + encodeURIComponent(ago(item.min_days));
        if (item.max_days !== null && item.max_days !== undefined) { url += "&_flt_1_received_at=" + encodeURIComponent(ago(item.max_days)); }
        return url;
      default: return null;
    }
  }

  function option(chart) {
    var tooltip = { trigger: chart.kind === "pie" ? "item" : "axis" };
    if (chart.series) {
      // A series may carry its own type ("bar"/"line") and a second value axis (axis: 1).
      var dual = chart.series.some(function (s) { return s.axis === 1; });
      // Counts are whole numbers: no 0.2, 0.4 ticks on an axis of counts.
      var counts = function (axis) {
        return { type: "value", minInterval: chart.series.filter(function (s) { return (s.axis || 0) === axis; })
          .every(function (s) { return s.data.every(function (v) { return v === null || Number.isInteger(v); }); }) ? 1 : 0 };
      };
      return {
        color: palette, tooltip: tooltip,
        // One series needs no legend (and no "上期" without a previous period).
        legend: { show: chart.series.length > 1, type: "scroll", bottom: 0 },
        grid: { left: 40, right: dual ? 56 : 16, top: 16, bottom: chart.series.length > 1 ? 48 : 24 },
        xAxis: { type: "category", data: chart.labels },
        yAxis: dual ? [counts(0), counts(1)] : counts(0),
        series: chart.series.map(function (s) {
          return { name: s.name, type: s.type || (chart.kind === "line" ? "line" : "bar"), yAxisIndex: s.axis || 0,
            data: s.data, connectNulls: true };
        })
      };
    }
    var items = chart.items || [];
    if (chart.kind === "pie") {
      return {
        color: palette, tooltip: tooltip, legend: { type: "scroll", bottom: 0 },
        series: [{ type: "pie", radius: ["35%", "65%"], center: ["50%", "45%"],
          data: items.map(function (i) { return { name: i.label, value: i.value }; }) }]
      };
    }
    var isRate = items.length && items[0].denominator !== undefined;
    return {
      color: palette,
      tooltip: {
        trigger: "axis",
        formatter: function (params) {
          var i = items[params[0].dataIndex];
          if (isRate) {
            return esc(i.label) + "<br>" + pct(i.value) + " (" + i.numerator + " / " + i.denominator + ")" +
              (i.late ? "<br>" + esc(labels.late) + " " + i.late : "") +
              (i.average_delay_hours ? "<br>" + esc(labels.avg_delay) + " " + i.average_delay_hours.toFixed(1) : "");
          }
          return esc(i.label) + "<br>" + (i.value === null ? "—" : i.value);
        }
      },
      grid: { left: 90, right: 24, top: 12, bottom: 24 },
      yAxis: { type: "category", data: items.map(function (i) { return i.label; }), inverse: true },
      xAxis: isRate ? { type: "value", max: 100, axisLabel: { formatter: "{value}%" } } : { type: "value", minInterval: 1 },
      series: [{ type: "bar", data: items.map(function (i) { return isRate ? (i.value === null ? null : +(i.value * 100).toFixed(1)) : i.value; }),
        label: { show: true, position: "right", formatter: function (p) { return p.value === null || p.value === undefined ? "—" : (isRate ? p.value + "%" : p.value); } } }]
    };
  }

  function renderCharts(d) {
    var $charts = $("#charts").empty();
    var names = d.chart_order || Object.keys(d.charts || {});
    if (!names.length) { $charts.html('<div class="col-xs-12 text-muted">' + esc(root.getAttribute("data-none")) + "</div>"); return; }
    names.forEach(function (name) {
      var chart = d.charts[name];
      var id = "chart-" + name;
      $charts.append('<div class="col-md-6"><div class="panel panel-default chart-panel"><div class="panel-heading"><strong>' +
        esc(chart.title) + '</strong></div><div class="panel-body"><div class="chart" id="' + id + '" data-chart="' + esc(name) + '"></div></div></div></div>');
      var instance = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
      instance.setOption(option(chart));
      instance.on("click", function (params) {
        var item = (chart.items || [])[params.dataIndex] || {};
        var url = drillUrl(chart, item, params.dataIndex, d.period);
        if (url) { window.location.href = url; }
      });
      $(window).on("resize", function () { instance.resize(); });
    });
  }

  var query = window.location.search || "";
  $.getJSON(root.getAttribute("data-url") + query).done(function (d) {
    $("#period-label").text(d.period ? d.period.label : "");
    renderCards(d);
    renderCharts(d);
    root.setAttribute("data-ready", "1");
  }).fail(function (xhr) {
    $("#charts").html('<div class="col-xs-12 alert alert-danger">' + esc((xhr.responseJSON && xhr.responseJSON.message) || xhr.statusText) + "</div>");
    root.setAttribute("data-ready", "error");
  });
})(jQuery);
