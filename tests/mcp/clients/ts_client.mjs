// A TypeScript MCP client nobody here wrote: the official TypeScript SDK (v2,
// @modelcontextprotocol/client) and its Tasks extension (@modelcontextprotocol/ext-tasks),
// pinned in tools/node/package.json, against the real server. Run by tests/mcp/test_third_party_clients.py:
//
//   node ts_client.mjs <scenario> <mcp url> <bearer token>
//
// Prints one JSON object (what it saw) on stdout; exits non-zero on any error.
// Scenarios: list, progress, task, task-cancel, reattach; and
//   node ts_client.mjs oauth <mcp url> <client_id URL> <redirect URI> <username> <password>
// which gets its token by OAuth (PKCE, its Client ID Metadata Document) with the consent step automated.
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

// A browser for the consent step: cookies, Django's login form, the consent form, the redirect caught.
async function consent(authorizationUrl, username, password) {
  const jar = new Map();
  const browse = async (target, init = {}) => {
    const response = await fetch(target, {
      ...init, redirect: "manual",
      headers: { ...init.headers, Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; "), Referer: String(target) },
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  };
  const hidden = (html) => Object.fromEntries([...html.matchAll(/<input[^>]*type="hidden"[^>]*>/g)].map(([tag]) => [
    tag.match(/name="([^"]*)"/)[1], (tag.match(/value="([^"]*)"/) ?? [, ""])[1].replaceAll("&amp;", "&").replaceAll("&quot;", '"'),
  ]));
  const login = new URL("/accounts/login/", authorizationUrl);
  const form = hidden(await (await browse(login)).text());
  const loggedIn = await browse(login, { method: "POST", body: new URLSearchParams({ ...form, username, password }) });
  if (loggedIn.status !== 302) throw new Error(`login failed: ${loggedIn.status}`);
  const page = await (await browse(authorizationUrl)).text();
  const answer = await browse(authorizationUrl, { method: "POST", body: new URLSearchParams({ ...hidden(page), allow: "Authorize" }) });
  if (answer.status !== 302) throw new Error(`consent failed: ${answer.status}`);
  return new URL(answer.headers.get("location"), authorizationUrl).searchParams;
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

  async oauth() {
    const [clientId, redirectUri, username, password] = process.argv.slice(4);
    const store = {};
    const provider = {
      get redirectUrl() { return redirectUri; },
      clientMetadataUrl: clientId,
      get clientMetadata() {
        return { client_name: "TypeScript SDK test client", redirect_uris: [redirectUri], token_endpoint_auth_method: "none",
                 grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] };
      },
      clientInformation: () => store.client, saveClientInformation: (info) => { store.client = info; },
      tokens: () => store.tokens, saveTokens: (tokens) => { store.tokens = tokens; },
      redirectToAuthorization: (url) => { store.authorizationUrl = url; },
      saveCodeVerifier: (verifier) => { store.verifier = verifier; }, codeVerifier: () => store.verifier,
    };
    const open = () => new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    const client = new Client(CLIENT_INFO, { versionNegotiation: { mode: "auto" } });
    const transport = open();
    try {
      await client.connect(transport);
    } catch (error) {
      if (!store.authorizationUrl) throw error;  // the 401 started the flow: discovery, CIMD, PKCE
    }
    const redirect = await consent(store.authorizationUrl, username, password);
    await transport.finishAuth(redirect);
    const authed = new Client(CLIENT_INFO, { versionNegotiation: { mode: "auto" } });
    await authed.connect(open());
    const { tools } = await authed.listTools();
    const result = await authed.callTool({ name: "generate_report", arguments: { data: { oauth: 1 } } });
    await authed.close();
    const authorization = new URL(store.authorizationUrl);
    return {
      tools: tools.map((tool) => tool.name), result, scope: store.tokens.scope,
      request: Object.fromEntries(["client_id", "code_challenge_method", "resource"].map((k) => [k, authorization.searchParams.get(k)])),
    };
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
