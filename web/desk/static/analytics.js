// The analytics page's charts, drawn with the vendored Chart.js from the page's JSON data block
// (#analytics-data: data, never run). Every chart has its numbers in a table under it, and
// none relies on colour alone: each series has its own point style and dash pattern, named in
// the legend; points with too few answers for a margin of error are drawn hollow.
"use strict";
(function () {
  var holder = document.getElementById("analytics-data");
  if (!holder || typeof window.Chart === "undefined") return; // the tables still say it all
  var data = JSON.parse(holder.textContent);
  var Chart = window.Chart;
  var INK = "#1d232b";
  var BAND = "rgba(36, 86, 201, 0.16)";
  var COLOURS = ["#2456c9", "#b42318", "#1a7f37", "#9a6700", "#6b3fa0", "#0e7490", "#5d6876", "#c2410c"];
  var STYLES = ["circle", "triangle", "rect", "rectRot", "star", "cross", "crossRot", "line"];
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [12, 6], [1, 5], [6, 2, 2, 2]];
  var LABELS = ["negative", "neutral", "positive", "unclassified", "unlabelled"];
  var LABEL_COLOURS = { negative: "#b42318", neutral: "#5d6876", positive: "#1a7f37", unclassified: "#6f42c1", unlabelled: "#9a6700" };
  var GROUPS = [
    { name: "detractors (0–6)", from: 0, to: 6, colour: "#b42318" },
    { name: "passives (7–8)", from: 7, to: 8, colour: "#9a6700" },
    { name: "promoters (9–10)", from: 9, to: 10, colour: "#1a7f37" }
  ];
  Chart.defaults.animation = false; // figures, not a show; and screenshots stay stable
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.color = INK;
  Chart.defaults.font.family = "system-ui, sans-serif";

  function starts(series) {
    return series.map(function (p) { return p.start; });
  }

  function fixed(value, key) {
    return value === null || value === undefined ? "–" : value.toFixed(key === "ces" ? 2 : 1);
  }

  function legend(extra) {
    return Object.assign({ labels: { usePointStyle: true, boxWidth: 28 } }, extra || {});
  }

  // One metric over time: the line, and the ±margin band between an upper and a lower edge.
  function trendChart(canvas, series) {
    var key = canvas.dataset.metric, field = canvas.dataset.field, title = canvas.dataset.title;
    var points = series.map(function (p) { return p[key]; });
    var values = points.map(function (p) { return p[field]; });
    var upper = points.map(function (p) { return p.moe === null || p[field] === null ? null : p[field] + p.moe; });
    var lower = points.map(function (p) { return p.moe === null || p[field] === null ? null : p[field] - p.moe; });
    var hollow = points.map(function (p) { return p.n > 0 && p.moe === null; });
    var colour = COLOURS[0];
    return new Chart(canvas, {
      type: "line",
      data: {
        labels: starts(series),
        datasets: [
          { label: "upper", data: upper, borderWidth: 0, pointRadius: 0, pointHitRadius: 0, fill: false, spanGaps: false },
          {
            label: "95% margin of error", data: lower, borderWidth: 0, pointRadius: 0, pointHitRadius: 0,
            backgroundColor: BAND, fill: "-1", spanGaps: false, pointStyle: "rect"
          },
          {
            label: title, data: values, borderColor: colour, backgroundColor: colour, borderWidth: 2,
            pointStyle: "circle", pointRadius: 5, pointBorderWidth: 2, pointBorderColor: colour,
            pointBackgroundColor: hollow.map(function (h) { return h ? "#ffffff" : colour; }),
            spanGaps: true
          }
        ]
      },
      options: {
        plugins: {
          legend: legend({ labels: { usePointStyle: true, filter: function (item) { return item.text !== "upper"; } } }),
          tooltip: {
            filter: function (item) { return item.datasetIndex === 2; },
            callbacks: {
              label: function (ctx) {
                var p = points[ctx.dataIndex];
                var margin = p.moe === null ? " (few answers: no margin)" : " ±" + fixed(p.moe, key);
                return title + " " + fixed(p[field], key) + margin + ", n=" + p.n;
              }
            }
          }
        },
        scales: { y: key === "nps" ? { suggestedMin: -100, suggestedMax: 100 } : key === "ces" ? { suggestedMin: 1, suggestedMax: 7 } : { suggestedMin: 0, suggestedMax: 100 } }
      }
    });
  }

  // One metric over time, one line per breakdown value: style, dash and name tell them apart.
  function breakdownChart(canvas, breakdown, labels) {
    var key = canvas.dataset.metric, field = canvas.dataset.field;
    var datasets = breakdown.values.map(function (value, i) {
      var colour = COLOURS[i % COLOURS.length];
      var points = value.series.map(function (p) { return p[key]; });
      return {
        label: value.value + " (n=" + value.n + ")",
        data: points.map(function (p) { return p[field]; }),
        borderColor: colour, backgroundColor: colour, borderDash: DASHES[i % DASHES.length],
        pointStyle: STYLES[i % STYLES.length], pointRadius: 5, pointBorderColor: colour,
        pointBackgroundColor: points.map(function (p) { return p.n > 0 && p.moe === null ? "#ffffff" : colour; }),
        spanGaps: true
      };
    });
    return new Chart(canvas, {
      type: "line",
      data: { labels: labels, datasets: datasets },
      options: { plugins: { legend: legend() } }
    });
  }

  function distributionChart(canvas, distribution) {
    var key = canvas.dataset.metric;
    var counts = distribution[key].counts;
    var scores = Object.keys(counts).sort(function (a, b) { return a - b; });
    var datasets;
    if (key === "nps") { // three groups, stacked so that each bar belongs to its group's dataset
      datasets = GROUPS.map(function (g, i) {
        return {
          label: g.name, backgroundColor: g.colour, borderColor: INK, borderWidth: i + 1, pointStyle: STYLES[i],
          data: scores.map(function (s) { return s >= g.from && s <= g.to ? counts[s] : null; })
        };
      });
    } else {
      datasets = [{ label: "answers", backgroundColor: COLOURS[0], data: scores.map(function (s) { return counts[s]; }) }];
    }
    return new Chart(canvas, {
      type: "bar",
      data: { labels: scores, datasets: datasets },
      options: {
        plugins: { legend: legend({ display: key === "nps" }) },
        scales: { x: { stacked: true, title: { display: true, text: "score" } }, y: { stacked: true, beginAtZero: true, title: { display: true, text: "answers" } } }
      }
    });
  }

  function sentimentChart(canvas, sentiment) {
    var datasets = LABELS.map(function (label, i) {
      var colour = LABEL_COLOURS[label];
      return {
        label: label, data: sentiment.map(function (p) { return p.shares[label]; }),
        borderColor: colour, backgroundColor: colour, borderDash: DASHES[i], pointStyle: STYLES[i],
        pointRadius: 5, spanGaps: false
      };
    });
    return new Chart(canvas, {
      type: "line",
      data: { labels: starts(sentiment), datasets: datasets },
      options: {
        plugins: {
          legend: legend(),
          tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + " " + ctx.parsed.y + "% of " + sentiment[ctx.dataIndex].n; } } }
        },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "% of comments" } } }
      }
    });
  }

  function funnelChart(canvas, funnel) {
    var steps = [["invited", funnel.invited], ["withheld by rule", funnel.withheld], ["delivered", funnel.delivered], ["started", funnel.started], ["completed", funnel.completed]];
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: steps.map(function (s) { return s[0]; }),
        datasets: [{ label: "invitations", data: steps.map(function (s) { return s[1]; }), backgroundColor: COLOURS[0] }]
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } }
    });
  }

  var labels = starts(data.series);
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var kind = canvas.dataset.chart;
    if (kind === "trend") trendChart(canvas, data.series);
    else if (kind === "breakdown" && data.breakdown) breakdownChart(canvas, data.breakdown, labels);
    else if (kind === "distribution") distributionChart(canvas, data.distribution);
    else if (kind === "sentiment") sentimentChart(canvas, data.sentiment);
    else if (kind === "funnel") funnelChart(canvas, data.funnel);
    canvas.setAttribute("data-drawn", "1");
  });
})();
