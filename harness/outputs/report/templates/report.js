/* The report's script: decode the embedded data, draw every chart with uPlot, sort tables.
   No network: the data is in #report-data (gzip + base64), decoded with the browser's own
   DecompressionStream. window.reportData holds it once loaded, for re-analysis from the
   console (record, gate, interval logs). body[data-charts-drawn] says how many charts drew. */
(function () {
  "use strict";
  var PALETTE = ["#1f6fb4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf", "#bcbd22", "#393b79"];
  var plots = [];
  window.reportPlots = plots;

  function decode() {
    var el = document.getElementById("report-data");
    var bin = atob(el.textContent.trim());
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  function pctLabel(x) {
    if (x <= 1) return "0%";
    var p = 100 * (1 - 1 / x);
    var digits = Math.max(0, Math.round(Math.log10(x)) - 2);
    return p.toFixed(digits) + "%";
  }

  function fmt(v, unit) {
    if (v == null) return "–";
    var a = Math.abs(v);
    var s = a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) :
      a === 0 ? "0" : String(parseFloat(v.toPrecision(3)));
    return unit ? s + " " + unit : s;
  }

  function timeline(spec) {
    function clampX(u, v) {
      var x = u.valToPos(v, "x", true);
      return Math.min(Math.max(x, u.bbox.left), u.bbox.left + u.bbox.width);
    }
    return {
      hooks: {
        drawClear: [function (u) {
          if (!spec.shade || !spec.shade.length) return;
          var ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = "rgba(110, 120, 135, 0.13)";
          spec.shade.forEach(function (s) {
            var x0 = clampX(u, s[0]), x1 = clampX(u, s[1]);
            if (x1 > x0) ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
          });
          ctx.restore();
        }],
        draw: [function (u) {
          if (!spec.marks || !spec.marks.length) return;
          var ctx = u.ctx, dpr = window.devicePixelRatio || 1;
          ctx.save();
          ctx.strokeStyle = "rgba(80, 80, 80, 0.7)";
          ctx.fillStyle = "rgba(60, 60, 60, 0.9)";
          ctx.setLineDash([4 * dpr, 3 * dpr]);
          ctx.lineWidth = dpr;
          ctx.font = (10 * dpr) + "px sans-serif";
          ctx.textAlign = "left";  // uPlot leaves its axes' alignment on the context
          ctx.textBaseline = "alphabetic";
          var lastX = -1e9, row = 0;
          spec.marks.forEach(function (m) {
            var x = u.valToPos(m[0], "x", true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            row = x - lastX < 90 * dpr ? row + 1 : 0;
            lastX = x;
            var w = ctx.measureText(m[1]).width;
            var right = u.bbox.left + u.bbox.width;
            var tx = x + 3 * dpr + w > right ? x - 3 * dpr - w : x + 3 * dpr;
            ctx.fillText(m[1], Math.max(tx, u.bbox.left + 2 * dpr),
                         u.bbox.top + (10 + 11 * (row % 4)) * dpr);
          });
          ctx.restore();
        }]
      }
    };
  }

  function options(spec, width) {
    var kind = spec.x.kind, yUnit = spec.y.unit;
    var xScale = {time: false};
    if (kind === "nines") { xScale.distr = 3; xScale.log = 10; }
    var yScale = spec.y.log ? {distr: 3, log: 10} : {};
    var xAxis = {label: spec.x.label + (spec.x.unit && kind !== "decile" ? " (" + spec.x.unit + ")" : ""),
                 labelSize: 20, size: 36};
    if (kind === "nines") {
      xAxis.splits = function (u, i, min, max) {
        return [1, 2, 10, 100, 1000, 10000, 100000].filter(function (v) { return v >= min && v <= max; });
      };
      xAxis.filter = function (u, splits) { return splits; };  // keep 50% (not a power of 10)
      xAxis.values = function (u, splits) {
        return splits.map(function (v) { return v == null ? "" : pctLabel(v); }); };
    } else if (kind === "decile") {
      xAxis.values = function (u, splits) { return splits.map(function (v) { return "p" + v; }); };
    } else if (kind === "round") {  // a compare page's rounds: whole numbers only
      xAxis.values = function (u, splits) {
        return splits.map(function (v) { return Number.isInteger(v) ? String(v) : ""; }); };
    }
    var series = [{
      label: kind === "nines" ? "percentile" : kind === "decile" ? "decile" :
        kind === "round" ? "round" : "t (s)",
      value: function (u, v) { return v == null ? "–" : kind === "nines" ? pctLabel(v) :
        kind === "decile" ? "p" + v : kind === "round" ? "round " + v : v.toFixed(0) + " s"; }
    }];
    var colour = 0;
    spec.series.forEach(function (s, n) {
      var stroke = s.color || PALETTE[colour++ % PALETTE.length];
      var col = spec.data[n + 1] || [];
      // a value between two gaps draws no line: show the points of such a series
      var isolated = col.some(function (v, j) {
        return v != null && col[j - 1] == null && col[j + 1] == null; });
      var one = {label: s.label, stroke: stroke, width: s.width || 1.5, spanGaps: false,
                 value: function (u, v) { return fmt(v, yUnit); },
                 // a dashed (reference) series' points are smaller: drawn over the run's
                 // own where they coincide, they leave them visible
                 points: isolated || kind === "round"  // a few rounds: each one a point
                   ? {show: true, size: s.dash ? 3 : 6, fill: stroke} : {show: false}};
      if (s.dash) one.dash = [6, 4];
      if (s.step) one.paths = uPlot.paths.stepped({align: 1});
      series.push(one);
    });
    return {
      width: width, height: 260, series: series,
      scales: {x: xScale, y: yScale},
      axes: [xAxis, {label: spec.y.label + (yUnit ? " (" + yUnit + ")" : ""), labelSize: 20,
                     size: 60, values: function (u, splits) {
                       return splits.map(function (v) { return v == null ? "" : fmt(v); }); }}],
      bands: (spec.bands || []).map(function (b) {
        return {series: b, fill: "rgba(31, 111, 180, 0.15)"}; }),
      legend: {live: true},
      cursor: {drag: {x: true, y: false}},
      plugins: [timeline(spec)]
    };
  }

  function draw(el, spec) {
    var width = Math.max(el.clientWidth || 0, 320);
    var plot = new uPlot(options(spec, width), spec.data, el);
    plots.push({plot: plot, el: el});
    el.setAttribute("data-drawn", "1");
  }

  function drawAll(data) {
    var drawn = 0, failed = 0;
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var spec = data.charts[el.getAttribute("data-chart")];
      try {
        if (!spec) throw new Error("no data for " + el.getAttribute("data-chart"));
        draw(el, spec);
        drawn++;
      } catch (err) {
        failed++;
        el.innerHTML = "";
        var p = document.createElement("p");
        p.className = "chart-error";
        p.textContent = "chart could not be drawn: " + err.message;
        el.appendChild(p);
        console.error("report chart", el.getAttribute("data-chart"), err);
      }
    });
    document.body.setAttribute("data-charts-drawn", String(drawn));
    document.body.setAttribute("data-charts-failed", String(failed));
  }

  function resize(width) {
    plots.forEach(function (p) {
      var w = width || Math.max(p.el.clientWidth || 0, 320);
      p.plot.setSize({width: w, height: 260});
    });
  }

  function sortable(table) {
    var heads = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(heads, function (th, col) {
      th.setAttribute("tabindex", "0");
      function sort() {
        var body = table.tBodies[0];
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var text = th.getAttribute("data-type") === "text";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var ca = a.cells[col], cb = b.cells[col];
          var va = ca ? (ca.getAttribute("data-sort") || ca.textContent) : "";
          var vb = cb ? (cb.getAttribute("data-sort") || cb.textContent) : "";
          var r = text ? va.localeCompare(vb) : (parseFloat(va) || 0) - (parseFloat(vb) || 0);
          return asc ? r : -r;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  document.querySelectorAll("table.sortable").forEach(sortable);
  var timer = null;
  window.addEventListener("resize", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { resize(); }, 150);
  });
  window.addEventListener("beforeprint", function () { resize(680); });
  window.addEventListener("afterprint", function () { resize(); });
  Promise.resolve().then(decode).then(function (data) {  // a throw in decode is caught too
    window.reportData = data;
    drawAll(data);
  }).catch(function (err) {
    document.body.setAttribute("data-charts-failed", "all");
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      el.textContent = "The charts need the page's embedded data, which this browser could " +
        "not decode (" + err.message + "; DecompressionStream needs Chrome 80, Firefox 113 or " +
        "Safari 16.4). The tables above and below hold the figures.";
      el.className += " chart-error";
    });
    console.error("report data could not be decoded", err);
  });
})();
