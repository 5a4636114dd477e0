// A TypeScript MCP client nobody here wrote: the official TypeScript SDK (v2,
// @modelcontextprotocol/client) and its Tasks extension (@modelcontextprotocol/ext-tasks),
// pinned in tools/node/package.json, against the real server. Run by tests/mcp/test_third_party_clients.py:
//
//   node ts_client.mjs <scenario> <mcp url> <bearer token>
//
// Prints one JSON object (what it saw) on stdout; exits non-zero on any error.
// Scenarios: list, progress, task, task-cancel, reattach.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// The packages live in the project's .tools/ (./dev installs them); MCP_NODE_TOOLS names it.
const modules = join(process.env.MCP_NODE_TOOLS ?? ".tools", "node_modules", "@modelcontextprotocol");
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { Client, StreamableHTTPClientTransport } = await load("client/dist/index.mjs");
const { createTaskSessionFromClient, resultFromTaskOutcome } = await load("ext-tasks/dist/client/index.js");

const [scenario, url, token] = process.argv.slice(2);
const TASKS = "io.modelcontextprotocol/tasks";
const VERSION = "2026-07-28";
const CLIENT_INFO = { name: "ts-sdk-test-client", version: "1.0.0" };
const IDEMPOTENCY_KEY = "mcp-tools/idempotencyKey";
const auth = { Authorization: `Bearer ${token}` };

async function connect(capabilities = {}) {
  const client = new Client(CLIENT_INFO, { capabilities, versionNegotiation: { mode: "auto" } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth } }));
  return client;
}

// ext-tasks' raw path for 2026-07-28 task traffic the SDK's codecs do not carry (as the Inspector wires it).
let nextId = 1;
async function rawDispatch(body) {
  const request = { jsonrpc: "2.0", id: `raw-${nextId++}`, ...body };  // ext-tasks leaves the envelope to the host
  const name = request.params?.taskId ?? request.params?.name;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      ...auth, "Content-Type": "application/json", Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": VERSION, "Mcp-Method": request.method, ...(name ? { "Mcp-Name": name } : {}),
    },
    body: JSON.stringify(request),
  });
  const text = await response.text();
  if (process.env.TS_CLIENT_DEBUG) process.stderr.write(`raw ${JSON.stringify(request)} -> ${response.status} ${text.slice(0, 400)}\n`);
  if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    const messages = text.split("\n").filter((line) => line.startsWith("data: ")).map((line) => JSON.parse(line.slice(6)));
    return messages.find((message) => message.id === request.id);
  }
  return JSON.parse(text);
}

function taskSession(client, capabilities) {
  return createTaskSessionFromClient(client, {
    endpointId: "ts-client-test",
    rawDispatch,
    v2RequestFraming: { protocolVersion: VERSION, clientInfo: CLIENT_INFO, clientCapabilities: capabilities },
  });
}

const scenarios = {
  async list() {
    const client = await connect();
    const { tools } = await client.listTools();
    await client.close();
    return { tools: tools.map((tool) => ({ name: tool.name, hasOutputSchema: Boolean(tool.outputSchema) })) };
  },

  async progress() {
    const client = await connect();
    const progress = [];
    const result = await client.callTool(
      { name: "generate_report", arguments: { data: { rain_mm: [3, 0, 12] } } },
      { onprogress: (update) => progress.push({ progress: update.progress, message: update.message }) },
    );
    await client.close();
    return { progress, result };
  },

  async task() {
    const capabilities = { extensions: { [TASKS]: {} } };
    const client = await connect(capabilities);
    const session = taskSession(client, capabilities);
    const execution = await session.callTool("generate_report", { data: { tide_m: [1.2, 3.4] } });
    const { outcome } = await execution.settle();
    const summary = { kind: execution.kind, taskId: execution.handle?.taskId, result: resultFromTaskOutcome(outcome) };
    await session.close();
    await client.close();
    return summary;
  },

  async "task-cancel"() {
    const capabilities = { extensions: { [TASKS]: {} } };
    const client = await connect(capabilities);
    const session = taskSession(client, capabilities);
    const execution = await session.callTool("generate_report", { data: { k: Array.from({ length: 80 }, (_, i) => i) } });
    const taskId = execution.handle?.taskId;
    await execution.cancel();
    const { outcome } = await execution.settle();
    await session.close();
    await client.close();
    return { kind: execution.kind, taskId, outcome: outcome.status ?? outcome.kind ?? outcome };
  },

  async reattach() {
    const meta = { [IDEMPOTENCY_KEY]: `ts-${Date.now()}` };
    const args = { name: "generate_report", arguments: { data: { k: Array.from({ length: 40 }, (_, i) => i) } }, _meta: meta };
    const first = await connect();
    const seen = [];
    const abort = new AbortController();
    const dropped = first.callTool(args, {
      signal: abort.signal,
      onprogress: (update) => { seen.push(update.message); abort.abort(); },  // the connection "drops" mid-stream
    }).catch((error) => ({ aborted: String(error) }));
    await dropped;
    await first.close();
    const second = await connect();
    const resumed = [];
    const result = await second.callTool(args, { onprogress: (update) => resumed.push(update.message) });
    await second.close();
    return { seenBefore: seen[0], resumedWith: resumed[0], result };
  },
};

try {
  process.stdout.write(JSON.stringify(await scenarios[scenario]()) + "\n");
  process.exit(0);
} catch (error) {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
}
