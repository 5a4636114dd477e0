/*
 * The protocol client: one WebSocket to /ws/executions/, kept alive.
 *
 * Everything here is PROTOCOL.md and nothing more, so a third-party client
 * can copy it. What it guarantees to its caller:
 *
 * - every execution it follows delivers its events in seq order, each once:
 *   a seq at or below the last one seen is dropped (duplicate), a seq past
 *   the next one means something was lost, and the client asks again with
 *   `subscribe` from the last seq it has (it never shows a gap);
 * - after a drop it reconnects with exponential backoff (0.5 s doubling to
 *   30 s, with jitter so a restarted server is not hit by every tab at
 *   once) and re-sends `subscribe` with `after_seq` = the last seq seen for
 *   every execution still running, so the text continues where it stopped;
 * - a silent connection (laptop asleep, Wi-Fi gone without a FIN) is noticed
 *   by `ping`: after SILENCE_LIMIT_MS without any frame it is treated as
 *   dropped;
 * - close code 4401 (not authenticated) stops reconnecting: the session has
 *   ended and only logging in again helps.
 *
 *     const client = new ExecutionClient({ url, onState: (state, info) => ... });
 *     client.start();
 *     const accepted = await client.execute({ tool, parameters, onEvent });
 *     client.follow(executionId, { onEvent, onError });     // replay from seq 0
 *     client.cancel(executionId);
 */
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30000;
const HEARTBEAT_EVERY_MS = 10000;
const PING_AFTER_SILENT_MS = 20000;
const SILENCE_LIMIT_MS = 45000;
const CLOSE_UNAUTHENTICATED = 4401;
const TERMINAL = new Set(["execution.completed", "execution.failed", "execution.cancelled"]);

export class ExecutionClient {
  constructor({ url, onState = () => {}, onError = () => {} }) {
    this.url = url;
    this.onState = onState;
    this.onError = onError; // errors that answer no request of ours
    this.socket = null;
    this.state = "idle";
    this.attempt = 0;
    this.retryTimer = null;
    this.heartbeat = null;
    this.lastHeard = 0;
    this.counter = 0;
    this.requests = new Map(); // request_id -> {kind, resolve, reject, executionId, onEvent}
    this.followed = new Map(); // execution_id -> {lastSeq, ended, resyncing, cancelWanted, onEvent, onError}
  }

  /* --- Connection ---------------------------------------------------- */

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    this.connect();
  }

  connect() {
    clearTimeout(this.retryTimer);
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.setState("connecting", { attempt: this.attempt });
    socket.addEventListener("open", () => this.opened(socket));
    socket.addEventListener("message", (event) => this.received(socket, event.data));
    socket.addEventListener("close", (event) => this.closed(socket, event.code));
  }

  reconnectNow() {
    if (this.state === "waiting") this.connect();
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  setState(state, info = {}) {
    this.state = state;
    this.onState(state, info);
  }

  opened(socket) {
    if (socket !== this.socket) return;
    this.attempt = 0;
    this.lastHeard = Date.now();
    this.heartbeat = setInterval(() => this.checkAlive(socket), HEARTBEAT_EVERY_MS);
    this.setState("open");
    for (const [executionId, follower] of this.followed) {
      if (follower.ended) continue;
      this.subscribe(executionId, follower.lastSeq);
      if (follower.cancelWanted) this.send({ type: "cancel", execution_id: executionId });
    }
  }

  closed(socket, code) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.heartbeat);
    for (const request of this.requests.values()) {
      request.reject?.({ code: "connection_lost",
        message: "The connection dropped before the server answered. Check History before trying again." });
    }
    this.requests.clear();
    if (code === CLOSE_UNAUTHENTICATED) {
      this.setState("signed-out");
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.setState("waiting", { attempt: this.attempt, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  checkAlive(socket) {
    const silent = Date.now() - this.lastHeard;
    if (silent > SILENCE_LIMIT_MS) {
      // close() on a dead link may wait long for the closing handshake: give up on it now.
      this.closed(socket, 1006);
      socket.close();
    } else if (silent > PING_AFTER_SILENT_MS) {
      this.send({ type: "ping" });
    }
  }

  send(message) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  nextRequestId(kind) {
    this.counter += 1;
    return `${kind}-${this.counter}-${Math.random().toString(36).slice(2, 8)}`;
  }

  /* --- Requests ------------------------------------------------------ */

  request(kind, message, extra = {}) {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject({ code: "not_connected", message: "Not connected to the server; wait for the connection to return." });
        return;
      }
      const requestId = this.nextRequestId(kind);
      this.requests.set(requestId, { kind, resolve, reject, ...extra });
      this.send({ ...message, request_id: requestId });
    });
  }

  listTools() {
    return this.request("tools", { type: "list_tools" }).then((answer) => answer.tools);
  }

  /* Resolves with `execution.accepted`; `onEvent` then gets every event, from seq 1. */
  execute({ tool, parameters, useCache = true, onEvent }) {
    return this.request("execute", { type: "execute", tool, parameters, use_cache: useCache }, { onEvent });
  }

  /* Replays an execution from after `afterSeq`, then follows it live. */
  follow(executionId, { onEvent, onError = () => {}, afterSeq = 0 }) {
    this.followed.set(executionId, { lastSeq: afterSeq, ended: false, resyncing: false, cancelWanted: false,
      onEvent, onError });
    if (this.isOpen) this.subscribe(executionId, afterSeq);
  }

  subscribe(executionId, afterSeq) {
    const requestId = this.nextRequestId("subscribe");
    this.requests.set(requestId, { kind: "subscribe", executionId });
    this.send({ type: "subscribe", execution_id: executionId, after_seq: afterSeq, request_id: requestId });
  }

  cancel(executionId) {
    const follower = this.followed.get(executionId);
    if (follower) follower.cancelWanted = true; // re-sent on reconnect if the socket is down now
    this.send({ type: "cancel", execution_id: executionId });
  }

  forget(executionId) {
    const follower = this.followed.get(executionId);
    this.followed.delete(executionId);
    if (follower && !follower.ended) this.send({ type: "unsubscribe", execution_id: executionId });
  }

  lastSeq(executionId) {
    return this.followed.get(executionId)?.lastSeq ?? null;
  }

  /* --- Incoming frames ------------------------------------------------ */

  received(socket, data) {
    if (socket !== this.socket) return;
    this.lastHeard = Date.now();
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not the protocol; nothing sensible to do with it
    }
    const request = message.request_id ? this.requests.get(message.request_id) : undefined;
    if (request) this.requests.delete(message.request_id);
    switch (message.type) {
      case "execution.accepted": return this.accepted(message, request);
      case "tools": return request?.resolve(message);
      case "subscribed": return this.subscribed(message);
      case "error": return this.failedRequest(message, request);
      case "pong": case "unsubscribed": return undefined;
      default:
        if (message.type?.startsWith("execution.")) this.deliver(message);
        return undefined;
    }
  }

  accepted(message, request) {
    if (!request) return;
    // Registered before the next frame is read: the events follow at once.
    this.followed.set(message.execution_id, { lastSeq: 0, ended: false, resyncing: false, cancelWanted: false,
      onEvent: request.onEvent, onError: () => {} });
    request.resolve(message);
  }

  subscribed(message) {
    const follower = this.followed.get(message.execution_id);
    if (follower) follower.resyncing = false;
  }

  failedRequest(message, request) {
    if (request?.kind === "subscribe") {
      const follower = this.followed.get(request.executionId);
      if (follower && message.code === "not_found") this.followed.delete(request.executionId);
      follower?.onError(message);
    } else if (request?.reject) {
      request.reject(message);
    } else {
      this.onError(message);
    }
  }

  deliver(event) {
    const follower = this.followed.get(event.execution_id);
    if (!follower || follower.ended || typeof event.seq !== "number") return;
    if (event.seq <= follower.lastSeq) return; // already shown
    if (event.seq > follower.lastSeq + 1) {
      // Something was lost between us and the server: replay from what we have.
      if (!follower.resyncing) {
        follower.resyncing = true;
        this.subscribe(event.execution_id, follower.lastSeq);
      }
      return;
    }
    follower.lastSeq = event.seq;
    if (TERMINAL.has(event.type)) follower.ended = true;
    follower.onEvent(event);
  }
}
