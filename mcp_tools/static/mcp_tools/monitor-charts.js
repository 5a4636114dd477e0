/*
 * The monitor's charts: runs per minute by status, p50/p95 duration and tokens per tool,
 * over the last hour or day, drawn with the vendored uPlot (vendor/uplot/).
 *
 * Data: GET charts.json?window=hour|day (mcp_tools/admin_monitor.py), computed by the
 * database. It is fetched again when the monitor feed (monitor.js) reports that an
 * execution started or ended — at most once per REFRESH_AFTER_EVENT_MS — and every
 * SLIDE_MS so the window moves on while nothing happens.
 *
 * uPlot draws bars per series, not stacks: a stack is drawn as cumulative bars, tallest
 * first, each series showing its own count in the legend. window.__monitorCharts holds the
 * last data and the plots, for tests and the console.
 */
(function () {
  "use strict";

  var REFRESH_AFTER_EVENT_MS = 2000;
  var SLIDE_MS = 30000;
  var HEIGHT = 220;
  var STATES = [  // drawn bottom-up in the stack
    { key: "completed", label: "completed", color: "#2e7d32" },
    { key: "failed", label: "failed", color: "#ba2121" },
    { key: "cancelled", label: "cancelled", color: "#8a8a8a" },
    { key: "active", label: "running", color: "#d08a00" },
  ];

  var root = document.getElementById("monitor-charts");
  if (!root || typeof uPlot === "undefined") { return; }
  var url = root.dataset.url;
  var status = document.getElementById("monitor-charts-status");
  var state = { window: "hour", data: null, plots: {}, timer: null, pending: false, lastFetch: 0 };
  window.__monitorCharts = state;

  function width(element) {
    return Math.max(240, Math.floor(element.getBoundingClientRect().width));
  }

  // --- Runs per bucket, stacked by state.

  function runsChart(data) {
    var runs = data.runs;
    var raw = STATES.map(function (s) { return runs[s.key]; });
    var stacked = [];
    var sums = runs.t.map(function () { return 0; });
    raw.forEach(function (values) {
      sums = sums.map(function (sum, i) { return sum + values[i]; });
      stacked.push(sums.slice());
    });
    var order = STATES.map(function (_, i) { return i; }).reverse();  // tallest first, so each stays visible
    var series = [{ label: "time" }].concat(order.map(function (i) {
      return { label: STATES[i].label, stroke: STATES[i].color, fill: STATES[i].color, width: 0,
               paths: uPlot.paths.bars({ size: [0.85, 40] }), points: { show: false },
               value: function (u, v, si, idx) { return idx === null ? "—" : raw[i][idx]; } };
    }));
    var minutes = data.bucket_s / 60;
    return {
      title: minutes === 1 ? "Runs per minute, by status" : "Runs per " + minutes + " minutes, by status",
      series: series,
      axes: [{}, { label: "runs", size: 50 }],
      // Half a bucket of margin at each end, so the first and last bars are whole.
      scales: { x: { time: true, range: function () {
                  return [runs.t[0] - data.bucket_s / 2, runs.t[runs.t.length - 1] + data.bucket_s / 2]; } },
                y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
      values: [runs.t].concat(order.map(function (i) { return stacked[i]; })),
    };
  }

  // --- Per-tool bars: the smaller value drawn inside the larger one.

  function toolChart(tools, title, unit, inner, outer) {
    var x = tools.map(function (_, i) { return i; });
    return {
      title: title,
      series: [
        { label: "tool", value: function (u, v) { return v === null ? "—" : tools[v]; } },
        { label: outer.label, stroke: outer.color, fill: outer.color + "66", paths: uPlot.paths.bars({ size: [0.6, 80] }),
          points: { show: false }, value: outer.value },
        { label: inner.label, stroke: inner.color, fill: inner.color, paths: uPlot.paths.bars({ size: [0.3, 40] }),
          points: { show: false }, value: inner.value },
      ],
      axes: [{ splits: function () { return x; }, values: function (u, splits) {
                 return splits.map(function (i) { return tools[i] || ""; }); }, grid: { show: false } },
             { label: unit, size: 60 }],
      scales: { x: { time: false, range: function () { return [-0.5, Math.max(0.5, tools.length - 0.5)]; } },
                y: { range: function (u, min, max) { return [0, Math.max(1, max || 0)]; } } },
      values: [x, outer.values, inner.values],
    };
  }

  function durationChart(data) {
    var d = data.duration_ms;
    return toolChart(data.tools, "Duration per tool (completed, not cached)", "ms",
      { label: "p50", color: "#205067", values: d.p50 },
      { label: "p95", color: "#79aec8", values: d.p95 });
  }

  function tokensChart(data) {
    var input = data.tokens.input;
    var output = data.tokens.output;
    var total = input.map(function (n, i) { return n + output[i]; });
    return toolChart(data.tools, "Tokens per tool", "tokens",
      { label: "input", color: "#417690", values: input },
      { label: "output", color: "#e0a030", values: total,
        value: function (u, v, si, idx) { return idx === null ? "—" : output[idx]; } });
  }

  // --- Drawing.

  function draw(name, spec) {
    var holder = root.querySelector('[data-chart="' + name + '"]');
    holder.dataset.points = String(spec.values[0].length);
    var plot = state.plots[name];
    if (plot && plot.__title === spec.title && plot.series.length === spec.series.length) {
      plot.setData(spec.values);
      return;
    }
    if (plot) { plot.destroy(); }
    holder.textContent = "";
    plot = new uPlot({ title: spec.title, width: width(holder), height: HEIGHT, series: spec.series,
                       axes: spec.axes, scales: spec.scales, legend: { live: true } }, spec.values, holder);
    plot.__title = spec.title;
    state.plots[name] = plot;
  }

  function render(data) {
    state.data = data;
    draw("runs", runsChart(data));
    draw("duration", durationChart(data));
    draw("tokens", tokensChart(data));
    root.dataset.window = data.window;
    root.dataset.updated = data.now;
    status.textContent = "updated " + new Date(data.now).toLocaleTimeString();
  }

  function refresh() {
    state.pending = false;
    state.lastFetch = Date.now();
    fetch(url + "?window=" + encodeURIComponent(state.window), { credentials: "same-origin",
                                                              headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(render)
      .catch(function (error) { status.textContent = "could not load the charts (" + error.message + ")"; });
  }

  // A burst of feed events makes one request, not one each.
  function refreshSoon() {
    if (state.pending) { return; }
    state.pending = true;
    window.setTimeout(refresh, Math.max(0, state.lastFetch + REFRESH_AFTER_EVENT_MS - Date.now()));
  }

  document.addEventListener("mcp-monitor:event", function (event) {
    var message = event.detail;
    if (message.type === "execution.status" && message.status !== "pending") { return; }
    if (message.type === "execution.delta") { return; }
    refreshSoon();
  });

  root.querySelectorAll("button[data-window]").forEach(function (button) {
    button.addEventListener("click", function () {
      state.window = button.dataset.window;
      root.querySelectorAll("button[data-window]").forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
      refresh();
    });
  });

  window.addEventListener("resize", function () {
    Object.keys(state.plots).forEach(function (name) {
      var holder = root.querySelector('[data-chart="' + name + '"]');
      state.plots[name].setSize({ width: width(holder), height: HEIGHT });
    });
  });

  refresh();
  window.setInterval(refresh, SLIDE_MS);
}());
