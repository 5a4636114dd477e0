/*
 * One execution on screen: its status line, its streamed output, its result.
 *
 * `apply(event)` takes PROTOCOL.md's execution events in seq order (the
 * client has already dropped duplicates) and keeps the view in step:
 *
 *   execution.status     pending / running / retrying (attempt, reason);
 *                        retrying drops the text so far: the output restarts
 *   execution.delta      text appended; rendered as Markdown once per frame
 *   execution.completed  duration and whether the result came from the cache
 *   execution.failed     the error's message (and code)
 *   execution.cancelled
 *
 * The status line is an aria-live region, so a screen reader hears "Running",
 * "Completed in 2.1 s" without having to read the growing text.
 */
import { render } from "./markdown.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
let counter = 0;

function make(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function seconds(ms) {
  return ms < 10000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`;
}

/* Mid-stream, "**two high" would show its asterisks until the closing pair
   arrives; close a dangling ** or ` on the last line for display only. */
function closeOpenMarkers(text) {
  const lastLine = text.slice(text.lastIndexOf("\n") + 1);
  const fences = (text.match(/^\s*(```|~~~)/gm) || []).length;
  if (fences % 2) return text; // inside a code block: nothing to close
  if ((lastLine.match(/`/g) || []).length % 2) return `${text}\``;
  const bold = (lastLine.match(/\*\*/g) || []).length % 2 && !/\*\*\s*$/.test(lastLine);
  return bold ? `${text.trimEnd()}**` : text;
}

export class ExecutionView {
  constructor({ tool, label, onStop = () => {}, onClose = () => {}, onStatus = () => {}, beforeRender, afterRender }) {
    counter += 1;
    this.tool = tool;
    this.label = label;
    this.executionId = null;
    this.status = "pending";
    this.text = "";
    this.result = null;
    this.attempt = 1;
    this.framePending = false;
    this.onStatus = onStatus;
    this.beforeRender = beforeRender || (() => null);
    this.afterRender = afterRender || (() => {});
    this.build(counter, tool, label, onStop, onClose);
  }

  build(n, tool, label, onStop, onClose) {
    const titleId = `execution-${n}-title`;
    this.element = make("article", { class: "execution", "aria-labelledby": titleId, "data-status": "pending" });
    const heading = make("h3", { id: titleId, class: "execution-tool", tabindex: "-1" }, tool);
    const params = make("p", { class: "execution-params" }, label || "");
    this.stopButton = make("button", { type: "button", class: "stop-button" }, "Stop");
    this.stopButton.addEventListener("click", () => {
      this.stopButton.disabled = true;
      this.stopButton.textContent = "Stopping…";
      onStop(this);
    });
    const close = make("button", { type: "button", class: "close-button", "aria-label": `Remove ${tool} from the screen`,
      title: "Remove from the screen" }, "×");
    close.addEventListener("click", () => onClose(this));
    const head = make("header", { class: "execution-head" });
    const titles = make("div", { class: "execution-titles" });
    titles.append(heading, params);
    const actions = make("div", { class: "execution-actions" });
    actions.append(this.stopButton, close);
    head.append(titles, actions);
    this.statusLine = make("p", { class: "execution-status", role: "status", "aria-live": "polite",
      "aria-atomic": "true" });
    this.output = make("div", { class: "execution-output markdown", "aria-busy": "true",
      "aria-label": `${tool} output` });
    this.details = make("details", { class: "execution-result", hidden: "" });
    this.details.append(make("summary", {}, "Result details"), make("pre"));
    this.element.append(head, this.statusLine, this.output, this.details);
    this.heading = heading;
    this.showStatus("pending", "Pending: waiting for a worker");
  }

  setExecutionId(executionId) {
    this.executionId = executionId;
    this.element.dataset.executionId = executionId;
  }

  get ended() {
    return TERMINAL.has(this.status);
  }

  apply(event) {
    switch (event.type) {
      case "execution.status": return this.applyStatus(event);
      case "execution.delta":
        this.text += event.text;
        return this.scheduleRender();
      case "execution.completed":
        this.result = event.result;
        this.showResult(event.result);
        return this.finish("completed",
          `Completed in ${seconds(event.duration_ms)} · ${event.cached ? "cached result" : "fresh result"}`);
      case "execution.failed": {
        const error = event.error || {};
        return this.finish("failed", `Failed: ${error.message || "unknown error"} (${error.code || "error"})`);
      }
      case "execution.cancelled": return this.finish("cancelled", "Cancelled");
      default: return undefined;
    }
  }

  applyStatus(event) {
    if (event.status === "retrying") {
      this.attempt = event.attempt || this.attempt + 1;
      this.text = ""; // PROTOCOL.md: the output starts again
      this.scheduleRender();
      const why = event.message || event.reason;
      const reason = why ? `: ${why}` : "";
      return this.showStatus("retrying", `Retrying, attempt ${this.attempt}${reason}`);
    }
    if (event.status === "running") {
      this.attempt = event.attempt || this.attempt;
      return this.showStatus("running", this.attempt > 1 ? `Running (attempt ${this.attempt})` : "Running");
    }
    return this.showStatus(event.status, "Pending: waiting for a worker");
  }

  finish(status, message) {
    this.renderNow();
    this.output.setAttribute("aria-busy", "false");
    this.stopButton.hidden = true;
    this.showStatus(status, message);
  }

  /* A problem on our side of the wire (lost connection, unknown execution). */
  fail(message) {
    this.output.setAttribute("aria-busy", "false");
    this.stopButton.hidden = true;
    this.status = "error";
    this.element.dataset.status = "error";
    this.statusLine.textContent = message;
  }

  showStatus(status, message) {
    this.status = status;
    this.element.dataset.status = status;
    this.statusLine.textContent = message;
    this.onStatus(this, status);
  }

  showResult(result) {
    if (!result || typeof result !== "object") return;
    // The streamed text is already on screen; the rest (model, usage, ...) goes here.
    const rest = Object.fromEntries(Object.entries(result).filter(([, value]) => value !== this.text));
    this.details.querySelector("pre").textContent = JSON.stringify(rest, null, 2);
    this.details.hidden = false;
  }

  scheduleRender() {
    if (this.framePending) return;
    this.framePending = true;
    requestAnimationFrame(() => this.renderNow());
  }

  renderNow() {
    this.framePending = false;
    const memo = this.beforeRender(this);
    this.output.replaceChildren(render(this.ended ? this.text : closeOpenMarkers(this.text)));
    this.afterRender(this, memo);
  }
}
