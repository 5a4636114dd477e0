/*
 * The page: wires the protocol client to the tool form, the executions on
 * screen and the history list. No framework and no build step: native ES
 * modules, served as they are.
 *
 *   connection.js      the WebSocket client (PROTOCOL.md, reconnect, dedupe)
 *   schema-form.js     the form generated from a tool's JSON Schema
 *   execution-view.js  one execution: status, streamed Markdown, result
 *   markdown.js        Markdown to DOM nodes, never to HTML
 *
 * `window.__mcp` exposes the live objects (the socket, the client, the views)
 * for tests and for poking at from the console.
 */
import { ExecutionClient } from "./connection.js";
import { ExecutionView } from "./execution-view.js";
import { SchemaForm } from "./schema-form.js";

const config = JSON.parse(document.getElementById("mcp-config").textContent);
const initialHistory = JSON.parse(document.getElementById("history-data").textContent);

const $ = (id) => document.getElementById(id);
const els = {
  connection: $("connection"), connectionText: $("connection-text"), countdown: $("connection-countdown"),
  reconnect: $("reconnect-now"), form: $("tool-form"), select: $("tool-select"), description: $("tool-description"),
  fields: $("tool-fields"), useCache: $("use-cache"), formError: $("form-error"), run: $("run-button"),
  transcript: $("transcript"), transcriptEmpty: $("transcript-empty"), history: $("history"),
  historyEmpty: $("history-empty"),
};

const LABEL_CHARS = 120; // as the server cuts history labels
const GAP_PX = 8; // between the top of the visible area and a card brought into view
const views = new Map(); // execution_id -> ExecutionView
let shownLast = null; // the view brought into view last: the one whose text the page follows
let tools = new Map();
let countdownTimer = null;
let submitting = false;

const socketUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${config.ws_path}`;
const client = new ExecutionClient({ url: socketUrl, onState: showConnection,
  onError: (error) => console.warn("server error", error) });
const form = new SchemaForm(els.fields, { onSubmitShortcut: () => els.form.requestSubmit() });

window.__mcp = { get socket() { return client.socket; }, client, views };

/* --- Connection state ------------------------------------------------- */

function showConnection(state, info) {
  clearInterval(countdownTimer);
  els.connection.dataset.state = state;
  els.reconnect.hidden = state !== "waiting";
  els.countdown.textContent = "";
  if (state === "open") {
    els.connectionText.textContent = "Connected";
    loadTools();
  } else if (state === "connecting") {
    els.connectionText.textContent = info.attempt ? "Reconnecting…" : "Connecting…";
  } else if (state === "waiting") {
    els.connectionText.textContent = "Connection lost. Reconnecting";
    const tick = () => {
      const left = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
      els.countdown.textContent = ` in ${left} s (attempt ${info.attempt})`;
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
  } else if (state === "signed-out") {
    els.connectionText.textContent = "Signed out. ";
    const link = document.createElement("a");
    link.href = `${config.login_url}?next=${encodeURIComponent(location.pathname)}`;
    link.textContent = "Log in again";
    els.connectionText.appendChild(link);
  }
  updateRunButton();
}

function updateRunButton() {
  els.run.disabled = !client.isOpen || !tools.size || submitting;
  els.run.textContent = submitting ? "Starting…" : "Run";
}

/* --- Tools and the form ------------------------------------------------ */

async function loadTools() {
  let list;
  try {
    list = await client.listTools();
  } catch (error) {
    return; // the connection dropped again; the next "open" asks again
  }
  const previous = tools;
  tools = new Map(list.map((tool) => [tool.name, tool]));
  const chosen = tools.has(els.select.value) ? els.select.value : list[0]?.name;
  els.select.replaceChildren(...list.map((tool) => new Option(tool.name, tool.name)));
  els.select.disabled = !list.length;
  if (chosen) els.select.value = chosen;
  // Rebuild the form only if the schema changed, so a reconnect keeps what was typed.
  const before = previous.get(chosen);
  if (chosen && (!before || JSON.stringify(before) !== JSON.stringify(tools.get(chosen)) || !els.fields.children.length)) {
    chooseTool(chosen);
  }
  updateRunButton();
}

function chooseTool(name) {
  const tool = tools.get(name);
  if (!tool) return;
  els.description.textContent = tool.description || "";
  form.setTool(tool);
  showFormError([]);
}

function showFormError(messages) {
  els.formError.replaceChildren(...messages.map((message) => {
    const line = document.createElement("span");
    line.textContent = message;
    return line;
  }));
  els.formError.hidden = !messages.length;
}

async function submit(event) {
  event.preventDefault();
  if (submitting) return;
  showFormError([]);
  const { ok, parameters } = form.collect();
  if (!ok) return;
  const tool = els.select.value;
  const view = newView(tool, shortLabel(parameters));
  submitting = true;
  updateRunButton();
  try {
    const accepted = await client.execute({ tool, parameters, useCache: els.useCache.checked,
      onEvent: (e) => view.apply(e) });
    addHistory({ execution_id: accepted.execution_id, tool, status: view.status,
      created_at: new Date().toISOString(), label: view.label }, { prepend: true });
    show(view, accepted.execution_id);
  } catch (error) {
    rejected(error);
  } finally {
    submitting = false;
    updateRunButton();
  }
}

function shortLabel(parameters) {
  const label = JSON.stringify(parameters);
  return label.length > LABEL_CHARS ? `${label.slice(0, LABEL_CHARS - 1)}…` : label;
}

function rejected(error) {
  if (error.code === "invalid_parameters") {
    const unplaced = form.showServerErrors(error.details);
    showFormError([unplaced.length ? error.message : "The server did not accept these parameters; see the marked fields."]);
  } else if (error.code === "rate_limited") {
    showFormError([`${error.message} Try again in ${Math.ceil(error.retry_after || 1)} s.`]);
  } else {
    showFormError([error.message || "The server refused to run the tool."]);
  }
}

/* --- Executions on screen ------------------------------------------------ */

function newView(tool, label) {
  return new ExecutionView({
    tool, label,
    onStop: (view) => client.cancel(view.executionId),
    onClose: closeView,
    onStatus: (view, status) => updateHistoryStatus(view.executionId, status),
    beforeRender: (view) => view === shownLast && endInView(view),
    afterRender: (view, wasFollowing) => { if (wasFollowing) followText(view); },
  });
}

function show(view, executionId) {
  view.setExecutionId(executionId);
  views.set(executionId, view);
  els.transcript.appendChild(view.element);
  els.transcriptEmpty.hidden = true;
  markOnScreen(executionId, true);
  revealTop(view);
}

function closeView(view) {
  client.forget(view.executionId);
  views.delete(view.executionId);
  view.element.remove();
  markOnScreen(view.executionId, false);
  els.transcriptEmpty.hidden = views.size > 0;
}

function openExecution(entry) {
  const existing = views.get(entry.execution_id);
  if (existing) {
    revealTop(existing);
    existing.heading.focus({ preventScroll: true });
    return;
  }
  const view = newView(entry.tool, entry.label);
  show(view, entry.execution_id);
  view.statusLine.textContent = "Loading…";
  client.follow(entry.execution_id, {
    onEvent: (e) => view.apply(e),
    onError: (error) => view.fail(error.code === "not_found" ? "This execution is no longer available." : error.message),
  });
  view.heading.focus({ preventScroll: true });
}

/* Scrolling. Wide screens scroll the output column (the page itself never
   scrolls there); narrow ones scroll the page under a sticky top bar. Either
   way a card is brought in at its top, and while it streams the page follows
   its text only as far as keeps that top in view: the top bar and the card's
   title never leave the screen on their own. */

function scroller() {
  return getComputedStyle(els.transcript).overflowY === "auto" ? els.transcript : document.scrollingElement;
}

/* The part of the viewport the output may use: below the top bar, or the column's box. */
function visibleArea() {
  const box = scroller();
  if (box === els.transcript) {
    const rect = box.getBoundingClientRect();
    return { top: rect.top, bottom: rect.bottom };
  }
  return { top: document.querySelector(".topbar").getBoundingClientRect().bottom, bottom: window.innerHeight };
}

function revealTop(view) {
  shownLast = view;
  scroller().scrollTop += view.element.getBoundingClientRect().top - visibleArea().top - GAP_PX;
}

function endInView(view) {
  return view.element.getBoundingClientRect().bottom - visibleArea().bottom < 64;
}

function followText(view) {
  const card = view.element.getBoundingClientRect();
  const area = visibleArea();
  const below = card.bottom - area.bottom + GAP_PX; // how far the end is past the fold
  const room = card.top - area.top - GAP_PX; // how far the page may move before the title leaves
  const step = Math.min(below, room);
  if (step > 0) scroller().scrollTop += step;
}

/* --- History ------------------------------------------------------------- */

function historyItem(entry) {
  const item = document.createElement("li");
  item.dataset.executionId = entry.execution_id;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "history-item";
  const tool = document.createElement("span");
  tool.className = "history-tool";
  tool.textContent = entry.tool;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.dataset.status = entry.status;
  badge.textContent = entry.status;
  const label = document.createElement("span");
  label.className = "history-label";
  label.textContent = entry.label || "";
  const time = document.createElement("time");
  time.dateTime = entry.created_at;
  time.textContent = new Date(entry.created_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  button.append(tool, " ", badge, label, time);
  button.addEventListener("click", () => openExecution(entry));
  item.appendChild(button);
  return item;
}

function addHistory(entry, { prepend = false } = {}) {
  const item = historyItem(entry);
  if (prepend) els.history.prepend(item);
  else els.history.appendChild(item);
  els.historyEmpty.hidden = true;
}

function historyEntryElement(executionId) {
  return executionId ? els.history.querySelector(`li[data-execution-id="${CSS.escape(executionId)}"]`) : null;
}

function updateHistoryStatus(executionId, status) {
  const badge = historyEntryElement(executionId)?.querySelector(".badge");
  if (badge) {
    badge.dataset.status = status;
    badge.textContent = status;
  }
}

function markOnScreen(executionId, onScreen) {
  const button = historyEntryElement(executionId)?.querySelector("button");
  if (button) button.setAttribute("aria-current", onScreen ? "true" : "false");
}

/* --- Start ------------------------------------------------------------------ */

initialHistory.forEach((entry) => addHistory(entry));
els.form.addEventListener("submit", submit);
els.select.addEventListener("change", () => chooseTool(els.select.value));
els.reconnect.addEventListener("click", () => client.reconnectNow());
client.start();
