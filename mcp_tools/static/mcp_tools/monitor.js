/*
 * The admin's live monitor: a client of /ws/monitor/ (PROTOCOL.md, "Monitor feed").
 *
 * The socket authenticates with the admin's session cookie. On connect the server sends
 * monitor.snapshot (active executions, the latest ended ones in `recent` — an extension —
 * and per-tool counters); after that every execution's
 * execution.status and terminal events arrive, each with tool, user, status and seq. The page
 * keeps one row per execution and one counter row per tool and updates them in place.
 * "watch" subscribes to one execution, so its deltas (its streamed text) show below.
 * Every message is also dispatched as a DOM event, "mcp-monitor:event", for the charts
 * (monitor-charts.js).
 *
 * Model and user text only ever reaches the page through textContent, never as HTML.
 */
(function () {
  "use strict";

  var MAX_ENDED_ROWS = 50;
  var TERMINAL = { "execution.completed": true, "execution.failed": true, "execution.cancelled": true };
  // A status never goes back: an event queued before the snapshot must not undo it.
  var RANK = { pending: 0, running: 1, retrying: 1, completed: 2, failed: 2, cancelled: 2 };

  var root = document.getElementById("monitor");
  if (!root) { return; }
  var connectionLabel = document.getElementById("monitor-connection");
  var statsBody = document.querySelector("#monitor-stats tbody");
  var executionsBody = document.querySelector("#monitor-executions tbody");
  var output = document.getElementById("monitor-output");
  var watchedLabel = document.getElementById("monitor-watched");

  var state = { executions: new Map(), stats: {}, watching: null, socket: null, retryMs: 1000 };

  // --- Connection.

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + root.dataset.socketPath;
  }

  function setConnection(stateName, text) {
    connectionLabel.dataset.state = stateName;
    connectionLabel.textContent = text;
  }

  function connect() {
    setConnection("connecting", "connecting…");
    var socket = new WebSocket(socketUrl());
    state.socket = socket;
    socket.onopen = function () { state.retryMs = 1000; };
    socket.onmessage = function (message) { handle(JSON.parse(message.data)); };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4403) {
        setConnection("closed", "refused (" + event.code + "): log in again as a staff user");
        return;
      }
      setConnection("closed", "disconnected; reconnecting in " + Math.round(state.retryMs / 1000) + " s");
      window.setTimeout(connect, state.retryMs);
      state.retryMs = Math.min(state.retryMs * 2, 30000);
    };
  }

  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(message));
    }
  }

  // --- Messages.

  function handle(message) {
    document.dispatchEvent(new CustomEvent("mcp-monitor:event", { detail: message }));
    if (message.type === "monitor.snapshot") { applySnapshot(message); }
    else if (message.type === "execution.status") { applyStatus(message); }
    else if (TERMINAL[message.type]) { applyEnd(message); }
    else if (message.type === "execution.delta") { appendOutput(message); }
    else if (message.type === "error") { setConnection("open", "live (server said: " + message.message + ")"); }
  }

  function applySnapshot(snapshot) {
    state.executions.clear();
    executionsBody.textContent = "";
    state.stats = {};
    Object.keys(snapshot.stats || {}).forEach(function (tool) {
      var s = snapshot.stats[tool];
      s.total_duration_ms = (s.average_duration_ms || 0) * (s.successful_executions || 0);
      state.stats[tool] = s;
    });
    // Oldest first: each new row goes on top, so the table ends up newest first.
    (snapshot.executions || []).concat(snapshot.recent || []).sort(function (a, b) {
      return a.created_at < b.created_at ? -1 : 1;
    }).forEach(function (e) {
      upsert({ execution_id: e.execution_id, tool: e.tool, user: e.user, status: e.status,
               attempt: e.attempt, created_at: e.created_at, duration_ms: e.duration_ms, seq: 0 });
    });
    renderStats();
    if (state.watching) { watch(state.watching); }
    setConnection("open", "live");
  }

  function applyStatus(event) {
    var row = upsert(event);
    if (row && event.status === "retrying" && state.watching === event.execution_id) {
      output.textContent = "";  // the output starts again (PROTOCOL.md)
    }
    renderStats();
  }

  function applyEnd(event) {
    var known = state.executions.get(event.execution_id);
    var wasActive = known !== undefined && !known.ended;
    var row = upsert(event);
    // Unknown at its end means it ended before the snapshot, whose counters include it.
    if (row && wasActive) { count(row, event); }
    if (state.watching === event.execution_id) {
      watchedLabel.textContent = event.execution_id + " (" + event.status + ")";
    }
    pruneEnded();
    renderStats();
  }

  function count(row, event) {
    var s = state.stats[row.tool] || (state.stats[row.tool] = {
      total_executions: 0, successful_executions: 0, failed_executions: 0, cancelled_executions: 0,
      cached_executions: 0, total_duration_ms: 0 });
    s.total_executions += 1;
    if (event.status === "completed") {
      s.successful_executions += 1;
      s.total_duration_ms += event.duration_ms || 0;
    } else if (event.status === "failed") {
      s.failed_executions += 1;
    } else if (event.status === "cancelled") {
      s.cancelled_executions += 1;
    }
    if (event.cached) { s.cached_executions += 1; }
  }

  // --- Execution rows.

  function upsert(event) {
    var id = event.execution_id;
    var row = state.executions.get(id);
    if (!row) {
      row = { id: id, tool: event.tool || "?", user: event.user || "?", status: event.status, seq: -1,
              attempt: event.attempt || 0, created_at: event.created_at || new Date().toISOString(),
              duration_ms: null, history: [], ended: false, element: createRow(id) };
      state.executions.set(id, row);
      executionsBody.insertBefore(row.element, executionsBody.firstChild);
    }
    var seq = event.seq || 0;
    if (seq && seq <= row.seq) { return row; }
    if (event.status && RANK[event.status] < RANK[row.status]) { return row; }
    row.seq = Math.max(row.seq, seq);
    if (event.tool) { row.tool = event.tool; }
    if (event.user) { row.user = event.user; }
    if (event.attempt) { row.attempt = event.attempt; }
    if (event.duration_ms !== undefined && event.duration_ms !== null) { row.duration_ms = event.duration_ms; }
    if (event.status) {
      row.status = event.status;
      if (row.history[row.history.length - 1] !== event.status) { row.history.push(event.status); }
    }
    row.ended = RANK[row.status] === 2;
    renderRow(row);
    return row;
  }

  function createRow(id) {
    var tr = document.createElement("tr");
    tr.dataset.executionId = id;
    ["started", "tool", "user", "status", "attempt num", "duration num", "id", "watch"].forEach(function (name) {
      var td = document.createElement("td");
      td.className = name;
      tr.appendChild(td);
    });
    var link = document.createElement("a");
    link.href = root.dataset.changeUrl.replace("00000000-0000-0000-0000-000000000000", id);
    link.textContent = id.slice(0, 8);
    link.title = id;
    tr.querySelector(".id").appendChild(link);
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.textContent = "watch";
    button.addEventListener("click", function () { watch(id); });
    tr.querySelector(".watch").appendChild(button);
    return tr;
  }

  function renderRow(row) {
    var tr = row.element;
    tr.dataset.status = row.status;
    tr.dataset.history = row.history.join(" ");
    tr.querySelector(".started").textContent = new Date(row.created_at).toLocaleTimeString();
    tr.querySelector(".tool").textContent = row.tool;
    tr.querySelector(".user").textContent = row.user;
    tr.querySelector(".status").textContent = row.status;
    tr.querySelector(".attempt").textContent = row.attempt || "";
    tr.querySelector(".duration").textContent = row.duration_ms === null ? "" : row.duration_ms;
  }

  function pruneEnded() {
    var ended = [];
    state.executions.forEach(function (row) { if (row.ended) { ended.push(row); } });
    ended.sort(function (a, b) { return a.created_at < b.created_at ? -1 : 1; });
    ended.slice(0, Math.max(0, ended.length - MAX_ENDED_ROWS)).forEach(function (row) {
      row.element.remove();
      state.executions.delete(row.id);
    });
  }

  // --- Per-tool counters.

  function renderStats() {
    var active = {};
    state.executions.forEach(function (row) {
      if (!row.ended) { active[row.tool] = (active[row.tool] || 0) + 1; }
    });
    var tools = Object.keys(state.stats).concat(Object.keys(active)).filter(function (t, i, all) {
      return all.indexOf(t) === i;
    }).sort();
    tools.forEach(function (tool) {
      var s = state.stats[tool] || {};
      var tr = statsBody.querySelector('tr[data-tool="' + CSS.escape(tool) + '"]') || createStatsRow(tool);
      // The stats count ended executions; the total counts the running ones too.
      var ended = s.total_executions || 0;
      var successful = s.successful_executions || 0;
      setCell(tr, "active", active[tool] || 0);
      setCell(tr, "total", ended + (active[tool] || 0));
      setCell(tr, "completed", successful);
      setCell(tr, "failed", s.failed_executions || 0);
      setCell(tr, "cancelled", s.cancelled_executions || 0);
      setCell(tr, "cached", s.cached_executions || 0);
      setCell(tr, "rate", ended ? (100 * successful / ended).toFixed(1) + " %" : "—");
      setCell(tr, "average", successful ? Math.round(s.total_duration_ms / successful) : "—");
    });
  }

  function createStatsRow(tool) {
    var tr = document.createElement("tr");
    tr.dataset.tool = tool;
    ["tool", "active", "total", "completed", "failed", "cancelled", "cached", "rate", "average"]
      .forEach(function (name) {
        var cell = document.createElement(name === "tool" ? "th" : "td");
        cell.className = name === "tool" ? name : name + " num";
        tr.appendChild(cell);
      });
    tr.querySelector(".tool").textContent = tool;
    statsBody.appendChild(tr);
    return tr;
  }

  function setCell(tr, name, value) {
    tr.querySelector("." + name).textContent = String(value);
  }

  // --- Watching one execution's output.

  function watch(id) {
    if (state.watching && state.watching !== id) {
      send({ type: "unsubscribe", execution_id: state.watching });
    }
    state.watching = id;
    output.textContent = "";
    var row = state.executions.get(id);
    watchedLabel.textContent = id + (row ? " (" + row.status + ")" : "");
    send({ type: "subscribe", execution_id: id, after_seq: 0 });
  }

  function appendOutput(event) {
    if (event.execution_id === state.watching) {
      output.textContent += event.text;
      output.scrollTop = output.scrollHeight;
    }
  }

  connect();
}());
