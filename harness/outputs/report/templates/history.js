/* The history page's additions to the report's script (report.js draws the charts).
   Its x axis is runs, not seconds: whole-run ticks, the run's id in the legend, every
   run's point drawn, the gate's verdicts as points only, and a click on a chart opens
   the run under the cursor (window.reportData.runs[i].href). It wraps the uPlot
   constructor before report.js uses it, so report.js stays as it is. */
(function () {
  "use strict";
  var U = window.uPlot;
  function runs() { return (window.reportData && window.reportData.runs) || []; }

  function runAxis(opts) {
    var axis = opts.axes[0];
    axis.splits = function (u, i, min, max) {
      var lo = Math.max(1, Math.ceil(min)), hi = Math.floor(max);
      var every = Math.max(1, Math.ceil((hi - lo + 1) / 12)), out = [];
      for (var v = lo; v <= hi; v += every) out.push(v);
      return out;
    };
    axis.values = function (u, splits) {
      return splits.map(function (v) { return v == null ? "" : "#" + v; }); };
    var x = opts.series[0];
    x.label = "run";
    x.value = function (u, v) {
      if (v == null) return "–";
      var r = runs()[v - 1];
      return "#" + v + (r ? " " + r.run_id + " (" + (r.git_commit || "-").slice(0, 10) + ")" : "");
    };
    opts.series.slice(1).forEach(function (s) {
      var gate = /^gate: /.test(s.label);
      s.points = {show: true, space: 0, size: gate ? 9 : 5, fill: s.stroke};
      if (gate) s.paths = function () { return null; };  // marks, not a line
    });
  }

  function Wrapped(opts, data, el) {
    if (document.body.getAttribute("data-page") === "history") runAxis(opts);
    return new U(opts, data, el);
  }
  Object.keys(U).forEach(function (k) { Wrapped[k] = U[k]; });
  Wrapped.prototype = U.prototype;
  window.uPlot = Wrapped;

  document.addEventListener("click", function (e) {
    var el = e.target.closest && e.target.closest(".chart[data-chart]");
    if (!el) return;
    var found = (window.reportPlots || []).filter(function (p) { return p.el === el; })[0];
    var idx = found ? found.plot.cursor.idx : null;
    var r = idx == null ? null : runs()[idx];
    if (r && r.href) window.location.href = r.href;
  });
})();
