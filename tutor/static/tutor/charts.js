// Charts for the teacher pages, drawn with the vendored uPlot from data that the page embeds with json_script:
// <div data-chart="bars|line" data-source="ID"> reads <script type="application/json" id="ID">.
(function () {
  "use strict";

  var BLUE = "#1864aa";
  var THRESHOLD = "#a34700";
  var INK = "#1a1a1a";
  var GRID = "#e0e0e0";
  var font = "13px system-ui, sans-serif";

  function pct(u, ticks) { return ticks.map(function (t) { return Math.round(t * 100) + "%"; }); }
  function axis(extra) {
    return Object.assign({ stroke: INK, font: font, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID } }, extra);
  }
  function yAxis() { return axis({ values: pct, splits: function () { return [0, 0.25, 0.5, 0.75, 1]; }, size: 60 }); }
  function width(el) { return Math.max(240, Math.floor(el.clientWidth || 600)); }

  function bars(el, d) {
    var x = d.labels.map(function (_, i) { return i; });
    var opts = {
      width: width(el),
      height: 300,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, x.length - 0.5] }, y: { range: [0, 1] } },
      axes: [
        axis({
          splits: function () { return x; },
          values: function (u, ticks) { return ticks.map(function (t) { return d.labels[t] || ""; }); },
          rotate: -40,
          size: 110,
          grid: { show: false },
        }),
        yAxis(),
      ],
      series: [
        {},
        { label: "class average", fill: BLUE, stroke: BLUE, paths: uPlot.paths.bars({ size: [0.7, 48] }), points: { show: false } },
        { label: "mastery threshold", stroke: THRESHOLD, dash: [6, 4], width: 1.5, points: { show: false } },
      ],
    };
    return new uPlot(opts, [x, d.values, x.map(function () { return d.threshold; })], el);
  }

  function line(el, d) {
    var opts = {
      width: width(el),
      height: 150,
      legend: { show: false },
      scales: {
        x: { time: false, range: function (u, min, max) { return min === max ? [min - 1, max + 1] : [min, max]; } },
        y: { range: [0, 1] },
      },
      axes: [axis({ incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], size: 32 }), yAxis()],
      series: [
        {},
        { label: d.title, stroke: BLUE, width: 2, points: { show: true, size: 5, fill: BLUE } },
        { label: "mastery threshold", stroke: THRESHOLD, dash: [6, 4], width: 1, points: { show: false } },
      ],
    };
    return new uPlot(opts, [d.x, d.y, d.x.map(function () { return d.threshold; })], el);
  }

  var kinds = { bars: bars, line: line };

  function draw() {
    var plots = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.dataset.source);
      var make = kinds[el.dataset.chart];
      if (!source || !make) return;
      plots.push({ el: el, plot: make(el, JSON.parse(source.textContent)) });
    });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        plots.forEach(function (p) { p.plot.setSize({ width: width(p.el), height: p.plot.height }); });
      }, 150);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
