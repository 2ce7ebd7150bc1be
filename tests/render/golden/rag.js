// cfai rag Worker, rendered by `cfai render` from templates/workers/rag.js.j2; do not edit.
//
//   GET    /health          {"worker", "kind", "template_sha256", "models"}
//   POST   /documents       {"documents": [{"id", "text", "metadata"?}]}
//                           -> {"documents", "chunks", "mutation_id"}
//   DELETE /documents/<id>  -> {"document", "mutation_id"}
//   POST   /query           {"question", "top_k"?, "filter"?, "stream"?}
//                           -> {"answer", "matches": [{"id", "document_id", "score", "text"}]}
//   POST   /v1/embeddings   OpenAI-compatible {"input": string | [string], "encoding_format"?}
//                           -> {"object": "list", "data": [{"embedding", "index"}], "model", "usage"}
//                           (the Worker's embedding model and pooling: the vectors its index holds)
//
// Streaming /query ("stream": true) answers text/event-stream: the first event is
// `data: {"matches": [...]}` (the same matches as above), then the model's events verbatim
// (`data: {"response": "..."}`, usage on the last), then `data: [DONE]`.
//
// Chunk ids are "<document id>#<n>", n from 0; each chunk's metadata is the document's own
// metadata plus document_id, chunk (n) and text. Vectorize writes apply asynchronously: a
// query right after an ingest may not see it yet (mutation_id tells which write to wait for).
//
// A filter or metadata Vectorize refuses, or inputs Workers AI refuses, answer 400 naming
// the field with the upstream reason.
//
// Bindings: AI, VECTORIZE, MODEL, MODEL_TRAITS, EMBEDDING_MODEL, GATEWAY_ID (when the Worker
// has a gateway), AUTH_TOKEN (secret); settings vars SYSTEM_PROMPT, MAX_TOKENS, TEMPERATURE,
// TOP_K, CHUNK_SIZE, CHUNK_OVERLAP, POOLING, EMBED_BATCH, DIMENSIONS (the embedding model's;
// absent: a model cfai does not know).

// ---- HTTP plumbing shared by every kind (templates/workers/_partials/http.js.j2) ----

// sha256 of this module with the value below zeroed; GET /health reports it so a deployed
// Worker proves it runs the reviewed code (cfai.render.module_sha256 recomputes it).
const TEMPLATE_SHA256 = "31bef4276ae8d20fc496fffbcbbb4eb2846993bc6b52ee71d627a95cc046d6c7";
const WORKER = "rag";
const KIND = "rag";
const AUTH = true;
const MAX_REQUEST_BYTES = 1048576;

const ERROR_CODES = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  429: "rate_limited",
  500: "internal_error",
  502: "upstream_error",
};

// An error with an honest status and a message safe to show the caller.
class HttpError extends Error {
  constructor(status, message, headers = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

const badRequest = (message) => new HttpError(400, message);

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function errorResponse(err) {
  if (err instanceof HttpError) {
    const code = ERROR_CODES[err.status] || "error";
    return json(err.status, { error: { code, message: err.message } }, err.headers);
  }
  // Never echo an unexpected error: it may carry internals. The log keeps the detail.
  console.error("cfai: unhandled error", err && err.stack ? err.stack : String(err));
  return json(500, { error: { code: "internal_error", message: "internal error" } });
}

// ---- request body: size limit, JSON, fields ----

async function readBody(request) {
  // content-length can be absent (chunked) or lie, so the bytes read are counted too.
  const declared = Number(request.headers.get("content-length"));
  if (declared > MAX_REQUEST_BYTES) throw tooLarge();
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_REQUEST_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.byteLength;
  }
  return bytes;
}

function tooLarge() {
  return new HttpError(413, `request body exceeds ${MAX_REQUEST_BYTES} bytes`);
}

async function readJson(request) {
  const bytes = await readBody(request);
  let value;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw badRequest("request body must be a JSON object");
  }
  return value;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// Field readers: null and absent mean "not given"; anything else must have the right type.
function optString(body, name, { min = 0, max = Infinity, path = name } = {}) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw badRequest(`${path}: must be a string`);
  if (v.length < min || v.length > max) {
    throw badRequest(
      max === Infinity
        ? `${path}: must have at least ${min} characters`
        : `${path}: must have ${min} to ${max} characters`,
    );
  }
  return v;
}

function reqString(body, name, opts = {}) {
  const v = optString(body, name, { min: 1, ...opts });
  if (v === undefined) throw badRequest(`${opts.path || name}: required`);
  return v;
}

function optInt(body, name, min, max) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw badRequest(`${name}: must be an integer from ${min} to ${max}`);
  }
  return v;
}

function optNumber(body, name, min, max) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw badRequest(`${name}: must be a number from ${min} to ${max}`);
  }
  return v;
}

function optBool(body, name) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badRequest(`${name}: must be true or false`);
  return v;
}

function optObject(body, name) {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badRequest(`${name}: must be a JSON object`);
  return v;
}

// ---- settings ----

// A stack's settings (max_tokens, system_prompt, ...) reach the Worker as plain-text vars, so
// this module is the same in every stack and its hash names the code alone. What the hash
// must cover stays in the code: auth and the request size limit above. A var that is missing
// or malformed is a deployment mistake, not the caller's.

// Settings too large for a var (Cloudflare allows 5 KB each:
// https://developers.cloudflare.com/workers/platform/limits/) are built into the code
// instead, as var text; usually none.
const BUILT_IN_SETTINGS = {};

function misconfigured(name, problem) {
  return new HttpError(500, `the Worker's ${name} var ${problem}`);
}

function hasSetting(env, name) {
  return Object.hasOwn(BUILT_IN_SETTINGS, name) || env[name] !== undefined;
}

function settingText(env, name) {
  const v = Object.hasOwn(BUILT_IN_SETTINGS, name) ? BUILT_IN_SETTINGS[name] : env[name];
  if (typeof v !== "string") throw misconfigured(name, "is not set");
  return v;
}

function settingNumber(env, name, min, max = Infinity) {
  const text = settingText(env, name);
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < min || v > max) {
    throw misconfigured(name, `must be a number from ${min}${max === Infinity ? "" : ` to ${max}`}`);
  }
  return v;
}

function settingInt(env, name, min, max = Infinity) {
  const v = settingNumber(env, name, min, max);
  if (!Number.isInteger(v)) throw misconfigured(name, "must be an integer");
  return v;
}

function settingBool(env, name) {
  const text = settingText(env, name);
  if (text !== "true" && text !== "false") throw misconfigured(name, "must be true or false");
  return text === "true";
}

function settingJson(env, name) {
  try {
    return JSON.parse(settingText(env, name));
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw misconfigured(name, "is not valid JSON");
  }
}

// ---- auth ----

async function checkAuth(request, env) {
  if (!AUTH) return;
  const expected = env.AUTH_TOKEN;
  if (typeof expected !== "string" || expected === "") {
    throw new HttpError(500, "the Worker's AUTH_TOKEN secret is not set");
  }
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.get("authorization") || "");
  if (!match || !sameSecret(match[1], expected)) {
    throw new HttpError(401, "missing or wrong bearer token", {
      "www-authenticate": 'Bearer realm="cfai"',
    });
  }
}

// Constant-time comparison: every character of the given token is compared with the
// expected one's (cycling through it) and the differences OR-ed together, never stopping
// early, so the time taken depends on the given token's length alone: it reveals neither the
// expected token's content nor its length. Synchronous and allocation-free, where SHA-256
// digests of both through crypto.subtle (the former way) cost a quarter of the chat Worker's
// CPU a request in workerd. (crypto.subtle.timingSafeEqual exists only in workerd and takes
// equal lengths; this works in every runtime.)
function sameSecret(given, expected) {
  let diff = given.length ^ expected.length;
  for (let i = 0; i < given.length; i++) {
    diff |= given.charCodeAt(i) ^ expected.charCodeAt(i % expected.length);
  }
  return diff === 0;
}

// ---- routing ----

// routes: [{path, methods: {METHOD: handler}}] matching exactly, or {prefix, ...} matching
// "<prefix><rest>" with rest non-empty and passed to the handler as req.param.
function findRoute(routes, pathname) {
  for (const route of routes) {
    if (route.path === pathname) return { route, param: undefined };
    if (route.prefix && pathname.startsWith(route.prefix) && pathname.length > route.prefix.length) {
      return { route, param: pathname.slice(route.prefix.length) };
    }
  }
  return undefined;
}

// `settings(env)` reads the kind's settings from its vars (handlers get them as req.settings).
async function serve(request, env, routes, models, settings) {
  // Per-request state: the gateway log id of this request's last AI call (env.AI keeps only
  // the isolate's last one).
  const req = { request, env, url: null, param: undefined, settings: null, logId: null };
  let response;
  try {
    req.url = new URL(request.url);
    if (req.url.pathname === "/health") {
      if (request.method !== "GET" && request.method !== "HEAD") {
        throw new HttpError(405, "use GET", { allow: "GET, HEAD" });
      }
      return json(200, {
        worker: WORKER,
        kind: KIND,
        template_sha256: TEMPLATE_SHA256,
        models: models(env),
      });
    }
    const found = findRoute(routes, req.url.pathname);
    if (!found) throw new HttpError(404, `no route ${req.url.pathname}`);
    const handler = found.route.methods[request.method];
    if (!handler) {
      const allow = Object.keys(found.route.methods).join(", ");
      throw new HttpError(405, `method ${request.method} not allowed; use ${allow}`, { allow });
    }
    await checkAuth(request, env);
    req.settings = settings(env);
    req.param = found.param;
    response = await handler(req);
  } catch (err) {
    response = errorResponse(err);
  }
  if (req.logId) response.headers.set("cf-aig-log-id", req.logId);
  if (req.cacheStatus) response.headers.set("cf-aig-cache-status", req.cacheStatus);
  return response;
}

// ---- Workers AI and Vectorize calls (templates/workers/_partials/ai.js.j2) ----

const RETRY_ATTEMPTS = 3;
const RETRY_BASE_MS = 100;

function requireVar(env, name) {
  const value = env[name];
  if (typeof value !== "string" || value === "") {
    throw new HttpError(500, `the Worker's ${name} binding is not set`);
  }
  return value;
}

// Gateway options only when the Worker has a gateway. A client may ask to skip the cache or
// change its TTL with AI Gateway's own request headers; they become binding options.
function gatewayOptions(req) {
  const id = req.env.GATEWAY_ID;
  if (!id) return undefined;
  const gateway = { id };
  const headers = req.request.headers;
  const skip = headers.get("cf-aig-skip-cache");
  if (skip !== null) {
    if (skip !== "true" && skip !== "false") throw badRequest("cf-aig-skip-cache: must be true or false");
    gateway.skipCache = skip === "true";
  }
  const ttl = headers.get("cf-aig-cache-ttl");
  if (ttl !== null) {
    if (!/^\d{1,8}$/.test(ttl)) throw badRequest("cf-aig-cache-ttl: must be a whole number of seconds");
    gateway.cacheTtl = Number(ttl);
  }
  return { gateway };
}

// Capacity and rate errors are worth retrying. The binding throws InferenceUpstreamError
// "<code>: <description>": 3040 is "Capacity temporarily exceeded" (also rejectIfBusy),
// 2003 and 429 come from an AI Gateway rate limit. 3036 (daily free allocation used) is a
// 429 too, but retrying cannot help.
function aiErrorKind(err) {
  const message = String((err && err.message) || err || "");
  if (/^(3040|2003|429)\b/.test(message) || message.includes("Capacity temporarily exceeded")) {
    return "retry";
  }
  if (/^3036\b/.test(message) || (err && err.status === 429)) return "limited";
  return "failed";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function runModel(req, model, inputs) {
  const options = gatewayOptions(req);
  for (let attempt = 1; ; attempt++) {
    try {
      const result = options
        ? await gatewayRun(req, model, inputs, options)
        : await req.env.AI.run(model, inputs);
      noteLogId(req);
      return result;
    } catch (err) {
      noteLogId(req);
      const kind = aiErrorKind(err);
      if (kind === "retry" && attempt < RETRY_ATTEMPTS) {
        await sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
        continue;
      }
      if (kind !== "failed") {
        throw new HttpError(429, "Workers AI is out of capacity or rate limited; retry later", {
          "retry-after": "1",
        });
      }
      const refused = clientMistake(err);
      if (refused) throw refused;
      console.error("cfai: Workers AI call failed", String((err && err.message) || err));
      throw new HttpError(502, "the Workers AI call failed");
    }
  }
}

// Workers AI refusing what the caller sent is the caller's mistake, not an upstream failure:
// 3003 incomplete request (a field's value; "JSON Mode couldn't be met"), 5004 invalid data,
// 8001 invalid input, 3006 too large (https://developers.cloudflare.com/workers-ai/platform/errors/).
// The answer names the field and gives Workers AI's reason.
const CLIENT_CODES = { 3003: 400, 5004: 400, 8001: 400, 3006: 413 };

function clientMistake(err) {
  const message = String((err && err.message) || "");
  const found = /^(\d{4}): ([\s\S]*)$/.exec(message);
  const status = found && CLIENT_CODES[found[1]];
  if (!status) return undefined;
  let reason = found[2].slice(0, 400);
  const named = /^(?:Request is missing headers or body|Invalid input|Invalid data type for base64 input): ([\w.\[\]-]+): ([\s\S]*)$/.exec(reason);
  if (named) return new HttpError(status, `${named[1]}: ${named[2]} (Workers AI ${found[1]})`);
  const field = /JSON Mode/.test(reason) ? "response_format" : "request";
  return new HttpError(status, `${field}: ${reason} (Workers AI ${found[1]})`);
}

// Vectorize refusing what the caller sent: a filter (40027) or metadata (40010 too large,
// 40011 a bad key) it will not take; the workerd binding throws
// "VECTOR_<OP>_ERROR (code = N): <reason>" (workerd src/cloudflare/internal/vectorize-api.ts).
const VECTORIZE_FIELDS = { 40027: "filter", 40010: "metadata", 40011: "metadata" };

function vectorizeMistake(err) {
  const found = /^VECTOR_\w+_ERROR \(code = (\d+)\): ([\s\S]*)$/.exec(String((err && err.message) || ""));
  const field = found && VECTORIZE_FIELDS[found[1]];
  if (!field) return undefined;
  return new HttpError(400, `${field}: ${found[2].slice(0, 400)} (Vectorize ${found[1]})`);
}

// Through a gateway the binding's raw answer is asked for (`returnRawResponse`), to read
// AI Gateway's cf-aig-cache-status header (HIT or MISS), which the binding otherwise drops;
// the answer is then read as the binding reads it (workerd src/cloudflare/internal/ai-api.ts:
// `run` and `_parseError`), so errors and results are the same as without the option.
async function gatewayRun(req, model, inputs, options) {
  const res = await req.env.AI.run(model, inputs, { ...options, returnRawResponse: true });
  // This call's own log id: the binding's aiGatewayLogId is one field shared by every request
  // the isolate serves at once, so under concurrency it may name another request's call.
  req.callLogId = res.headers.get("cf-aig-log-id") || undefined;
  const status = res.headers.get("cf-aig-cache-status");
  // Several calls in one request (rag: embed, then answer): HIT only when every one was.
  if (status) req.cacheStatus = req.cacheStatus === "MISS" ? "MISS" : status;
  if (!res.ok || !res.body) throw await bindingError(res);
  if (res.headers.get("content-type") === "application/json") return await res.json();
  return res.body;
}

async function bindingError(res) {
  const content = await res.text();
  let message = content;
  try {
    const parsed = JSON.parse(content);
    if (parsed.internalCode) message = `${parsed.internalCode}: ${parsed.description}`;
    else if (parsed.errors && parsed.errors[0]) message = `${parsed.errors[0].code}: ${parsed.errors[0].message}`;
  } catch {
    // not JSON: the text itself, as the binding does
  }
  const err = new Error(message);
  err.name = "InferenceUpstreamError";
  return err;
}

function noteLogId(req) {
  const id = req.callLogId || (req.env.AI && req.env.AI.aiGatewayLogId);
  if (req.env.GATEWAY_ID && id) req.logId = id;
}

async function vectorize(what, call) {
  try {
    return await call();
  } catch (err) {
    const refused = vectorizeMistake(err);
    if (refused) throw refused;
    console.error(`cfai: Vectorize ${what} failed`, String((err && err.message) || err));
    throw new HttpError(502, `the Vectorize ${what} call failed`);
  }
}

// The binding parses a result only when the backend answered exactly `application/json`;
// anything else arrives as a ReadableStream, so read and parse it here.
async function asObject(result) {
  if (result instanceof ReadableStream) {
    const text = await new Response(result).text();
    try {
      return JSON.parse(text);
    } catch {
      throw new HttpError(502, "Workers AI returned an unreadable result");
    }
  }
  if (!isObject(result)) throw new HttpError(502, "Workers AI returned an unexpected result");
  return result;
}

// What the Worker's model can do (the MODEL_TRAITS var, from cfai's catalog): `form` its
// input/output form ("native", "chat-completion", "gpt-oss"), `vision` how it takes images
// ("content-parts", "image-field" or "none"), `reasoning` where it puts its reasoning
// ("think-tag": inline, ended by </think>; "reasoning-content"; "none").
function modelTraits(env) {
  try {
    const traits = JSON.parse(env.MODEL_TRAITS || "{}");
    return isObject(traits) ? traits : {};
  } catch {
    return {};
  }
}

// A tool call of any model form as OpenAI's {id, type, function: {name, arguments: "<JSON>"}}:
// native {name, arguments: {...}}, {id, type, function: {name, arguments: {...}}} or OpenAI's.
function openaiToolCall(call, i) {
  const fn = isObject(call && call.function) ? call.function : call || {};
  const args = fn.arguments;
  return {
    id: typeof call.id === "string" && call.id ? call.id : `call_${i}`,
    type: "function",
    function: { name: String(fn.name || ""), arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}) },
  };
}

// Split a think-tag model's text at </think>: [reasoning, answer] (no tag: all answer).
function splitThinking(text) {
  const at = text.indexOf("</think>");
  if (at < 0) return [null, text];
  return [text.slice(0, at).replace(/^\s*<think>/, "").trim(), text.slice(at + 8).replace(/^\s+/, "")];
}

// The answer of any model form: native {response, tool_calls?, usage}, OpenAI's
// chat.completion (qwen3, granite, gpt-oss) or text_completion: {content, reasoning,
// toolCalls (OpenAI form), usage}. JSON mode's content may be an object.
function readAnswer(result, traits) {
  const choice = Array.isArray(result.choices) ? result.choices[0] || {} : undefined;
  if (choice && isObject(choice.message)) {
    const m = choice.message;
    return {
      content: m.content ?? null,
      reasoning: m.reasoning_content || m.reasoning || null,
      toolCalls: (Array.isArray(m.tool_calls) ? m.tool_calls : []).map(openaiToolCall),
      usage: result.usage || null,
    };
  }
  let content = choice ? choice.text ?? null : result.response ?? null;
  let reasoning = null;
  if (traits.reasoning === "think-tag" && typeof content === "string") [reasoning, content] = splitThinking(content);
  const toolCalls = (Array.isArray(result.tool_calls) ? result.tool_calls : []).map(openaiToolCall);
  return { content, reasoning, toolCalls, usage: result.usage || null };
}

// ---- Server-sent events (templates/workers/_partials/sse.js.j2) ----

// The `data` payload of each event of an SSE byte stream, including the final "[DONE]".
async function* sseData(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (value) buffer = (buffer + value).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const data = eventData(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (data !== undefined) yield data;
      }
      if (done) break;
    }
    const data = eventData(buffer);
    if (data !== undefined) yield data;
  } finally {
    reader.cancel().catch(() => {});
  }
}

function eventData(block) {
  const lines = block
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5));
  return lines.length ? lines.join("\n") : undefined;
}

// The model's events verbatim, always ending with exactly one "[DONE]".
async function* modelEvents(stream) {
  for await (const data of sseData(stream)) {
    if (data === "[DONE]") break;
    yield data;
  }
  yield "[DONE]";
}

// A model that answers JSON even when asked to stream (gpt-oss over the binding): its answer
// (`readAnswer`) as a native stream's events.
async function* answerEvents(answer) {
  const content = typeof answer.content === "string" ? answer.content : JSON.stringify(answer.content ?? "");
  const event = { response: content };
  if (answer.toolCalls.length) event.tool_calls = answer.toolCalls;
  if (answer.usage) event.usage = answer.usage;
  yield JSON.stringify(event);
  yield "[DONE]";
}

// What one Workers AI stream event adds: answer text, reasoning text and tool calls (OpenAI
// form), from a native event (`response`, `tool_calls`) or an OpenAI chunk
// (`choices[0].delta.content` / `reasoning_content` / `tool_calls`, or a text_completion's
// `choices[0].text`); usage rides on the last event. `state.thinking` is true while a
// think-tag model's text is still reasoning (until its </think>).
function eventParts(data, state) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return { text: "", reasoning: "", toolCalls: [], usage: undefined };
  }
  let text = "";
  let reasoning = "";
  let toolCalls = [];
  const choice = Array.isArray(event.choices) ? event.choices[0] : undefined;
  if (typeof event.response === "string") text = event.response;
  else if (choice && isObject(choice.delta)) {
    text = choice.delta.content || "";
    reasoning = choice.delta.reasoning_content || choice.delta.reasoning || "";
    if (Array.isArray(choice.delta.tool_calls)) toolCalls = choice.delta.tool_calls;
  } else if (choice && typeof choice.text === "string") text = choice.text;
  if (Array.isArray(event.tool_calls) && event.tool_calls.length) {
    toolCalls = event.tool_calls.map((c, i) => ({ index: i, ...openaiToolCall(c, i) }));
  }
  if (state.thinking && text) {
    const at = text.indexOf("</think>");
    if (at < 0) {
      reasoning += text;
      text = "";
    } else {
      reasoning += text.slice(0, at).replace(/\s+$/, "");
      text = text.slice(at + 8).replace(/^\s+/, "");
      state.thinking = false;
    }
  }
  return { text, reasoning, toolCalls, usage: isObject(event.usage) ? event.usage : undefined };
}

// An SSE response from an async iterable of data payloads. Headers are sent before the
// model finishes, so a failure mid-stream becomes a last error event, then [DONE].
function sseResponse(events) {
  const encoder = new TextEncoder();
  const it = events[Symbol.asyncIterator]();
  const body = new ReadableStream({
    async pull(controller) {
      try {
        const { done, value } = await it.next();
        if (done) controller.close();
        else controller.enqueue(encoder.encode(`data: ${value}\n\n`));
      } catch (err) {
        console.error("cfai: stream failed", String((err && err.message) || err));
        const error = { error: { code: "upstream_error", message: "the model stream failed" } };
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(error)}\n\ndata: [DONE]\n\n`));
        controller.close();
      }
    },
    async cancel() {
      if (it.return) await it.return();
    },
  });
  return new Response(body, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}

// ---- rag (templates/workers/rag.js.j2) ----

// OpenAI's embeddings API takes at most 2048 inputs a request.
const MAX_EMBED_INPUTS = 2048;
const MAX_CHUNKS = 100;
// Vectorize limits: ids of at most 64 bytes, 1000 vectors per write and 100 ids per delete, topK 50 when
// metadata is returned, filters under 2048 bytes of JSON.
const MAX_ID_BYTES = 64;
const MAX_DOCUMENT_ID_BYTES = MAX_ID_BYTES - 1 - String(MAX_CHUNKS - 1).length;
const WRITE_BATCH = 1000;
// deleteByIds refuses more than 100 ids (code 40007).
const DELETE_BATCH = 100;
const MAX_TOP_K = 50;
const MAX_FILTER_BYTES = 2048;

// The stack's settings (vars; see "settings" in the HTTP plumbing above).
function ragSettings(env) {
  const chunkSize = settingInt(env, "CHUNK_SIZE", 1);
  const pooling = settingText(env, "POOLING");
  if (pooling !== "mean" && pooling !== "cls") throw misconfigured("POOLING", "must be mean or cls");
  return {
    systemPrompt: settingText(env, "SYSTEM_PROMPT"),
    maxTokens: settingInt(env, "MAX_TOKENS", 1),
    temperature: settingNumber(env, "TEMPERATURE", 0),
    topK: settingInt(env, "TOP_K", 1, MAX_TOP_K),
    chunkSize,
    chunkOverlap: settingInt(env, "CHUNK_OVERLAP", 0, chunkSize - 1),
    pooling,
    embedBatch: settingInt(env, "EMBED_BATCH", 1),
    dimensions: hasSetting(env, "DIMENSIONS") ? settingInt(env, "DIMENSIONS", 1) : null,
  };
}

const byteLength = (s) => new TextEncoder().encode(s).length;
const chunkId = (documentId, n) => `${documentId}#${n}`;

// Split into chunks of at most `size` characters (code points, so no surrogate pair is
// cut), ending at whitespace when there is some in the chunk's second half, neighbours
// sharing about `overlap` characters.
function chunkText(text, { chunkSize: size, chunkOverlap: overlap }) {
  const chars = Array.from(text);
  const chunks = [];
  let start = 0;
  while (start < chars.length) {
    let end = Math.min(start + size, chars.length);
    if (end < chars.length) {
      for (let i = end; i > start + size / 2; i--) {
        if (/\s/.test(chars[i - 1])) {
          end = i;
          break;
        }
      }
    }
    const chunk = chars.slice(start, end).join("").trim();
    if (chunk) chunks.push(chunk);
    if (end >= chars.length) break;
    start = end - start > overlap ? end - overlap : end;
  }
  return chunks;
}

function readDocumentId(id, path) {
  if (typeof id !== "string" || id === "") throw badRequest(`${path}: must be a non-empty string`);
  if (byteLength(id) > MAX_DOCUMENT_ID_BYTES) {
    throw badRequest(
      `${path}: at most ${MAX_DOCUMENT_ID_BYTES} bytes (chunk ids "<id>#<n>" must fit Vectorize's ${MAX_ID_BYTES})`,
    );
  }
  return id;
}

function readMetadata(doc, path) {
  const metadata = optObject(doc, "metadata");
  if (metadata === undefined) return {};
  for (const key of Object.keys(metadata)) {
    if (key === "" || key.startsWith("$") || key.includes(".") || key.includes('"')) {
      throw badRequest(`${path}.metadata: key ${JSON.stringify(key)} must be non-empty without '.', '"' or a leading '$'`);
    }
  }
  return metadata;
}

async function embed(req, texts) {
  const model = requireVar(req.env, "EMBEDDING_MODEL");
  const vectors = [];
  const { embedBatch: batch, pooling } = req.settings;
  for (let i = 0; i < texts.length; i += batch) {
    const inputs = { text: texts.slice(i, i + batch) };
    // "mean" is the default; cls vectors are not comparable with mean ones.
    if (pooling !== "mean") inputs.pooling = pooling;
    const result = await asObject(await runModel(req, model, inputs));
    if (!Array.isArray(result.data) || result.data.length !== inputs.text.length) {
      throw new HttpError(502, "the embedding model returned an unexpected result");
    }
    vectors.push(...result.data);
  }
  return vectors;
}

async function deleteIds(req, ids) {
  let mutationId = null;
  for (let i = 0; i < ids.length; i += DELETE_BATCH) {
    const result = await vectorize("deleteByIds", () => req.env.VECTORIZE.deleteByIds(ids.slice(i, i + DELETE_BATCH)));
    mutationId = result.mutationId ?? mutationId;
  }
  return mutationId;
}

function idRange(documentId, from) {
  const ids = [];
  for (let n = from; n < MAX_CHUNKS; n++) ids.push(chunkId(documentId, n));
  return ids;
}

async function handleIngest(req) {
  const body = await readJson(req.request);
  if (!Array.isArray(body.documents) || body.documents.length === 0) {
    throw badRequest("documents: must be a non-empty array");
  }
  const seen = new Set();
  const vectors = [];
  const counts = [];
  body.documents.forEach((doc, i) => {
    const path = `documents[${i}]`;
    if (!isObject(doc)) throw badRequest(`${path}: must be an object`);
    const id = readDocumentId(doc.id, `${path}.id`);
    if (seen.has(id)) throw badRequest(`${path}.id: duplicate id ${JSON.stringify(id)}`);
    seen.add(id);
    const text = reqString(doc, "text", { path: `${path}.text` });
    const metadata = readMetadata(doc, path);
    const chunks = chunkText(text, req.settings);
    if (chunks.length === 0) throw badRequest(`${path}.text: must contain non-blank text`);
    if (chunks.length > MAX_CHUNKS) {
      throw badRequest(`${path}.text: makes ${chunks.length} chunks; at most ${MAX_CHUNKS} per document`);
    }
    counts.push([id, chunks.length]);
    chunks.forEach((chunk, n) => {
      vectors.push({
        id: chunkId(id, n),
        metadata: { ...metadata, document_id: id, chunk: n, text: chunk },
      });
    });
  });
  const values = await embed(req, vectors.map((v) => v.metadata.text));
  vectors.forEach((v, i) => {
    v.values = values[i];
  });
  let mutationId = null;
  for (let i = 0; i < vectors.length; i += WRITE_BATCH) {
    const result = await vectorize("upsert", () => req.env.VECTORIZE.upsert(vectors.slice(i, i + WRITE_BATCH)));
    mutationId = result.mutationId ?? mutationId;
  }
  // A re-ingested document may have had more chunks before: remove the ids past the new end.
  const stale = counts.flatMap(([id, count]) => idRange(id, count));
  mutationId = (await deleteIds(req, stale)) ?? mutationId;
  return json(200, { documents: counts.length, chunks: vectors.length, mutation_id: mutationId });
}

async function handleDelete(req) {
  let id;
  try {
    id = decodeURIComponent(req.param);
  } catch {
    throw badRequest("document id: not a valid URL-encoded string");
  }
  readDocumentId(id, "document id");
  const mutationId = await deleteIds(req, idRange(id, 0));
  return json(200, { document: id, mutation_id: mutationId });
}

function contextOf(matches) {
  if (matches.length === 0) return "(no matching documents)";
  return matches.map((m, i) => `[${i + 1}] ${m.text}`).join("\n\n");
}

async function handleQuery(req) {
  const body = await readJson(req.request);
  const question = reqString(body, "question", { max: 8192 });
  const { systemPrompt, maxTokens, temperature } = req.settings;
  const topK = optInt(body, "top_k", 1, MAX_TOP_K) ?? req.settings.topK;
  const filter = optObject(body, "filter");
  if (filter !== undefined && (Object.keys(filter).length === 0 || byteLength(JSON.stringify(filter)) >= MAX_FILTER_BYTES)) {
    throw badRequest(`filter: must be a non-empty object under ${MAX_FILTER_BYTES} bytes of JSON`);
  }
  const streaming = optBool(body, "stream") ?? false;
  const model = requireVar(req.env, "MODEL");
  const [vector] = await embed(req, [question]);
  const options = { topK, returnMetadata: "all" };
  if (filter !== undefined) options.filter = filter;
  const found = await vectorize("query", () => req.env.VECTORIZE.query(vector, options));
  const matches = ((found && found.matches) || []).map((m) => ({
    id: m.id,
    document_id: (m.metadata && m.metadata.document_id) ?? null,
    score: m.score,
    text: (m.metadata && m.metadata.text) ?? "",
  }));
  const messages = [
    ...(systemPrompt ? [{ role: "system", content: systemPrompt }] : []),
    { role: "user", content: `Context:\n${contextOf(matches)}\n\nQuestion: ${question}` },
  ];
  const inputs = { messages, max_tokens: maxTokens, temperature };
  const traits = modelTraits(req.env);
  if (streaming) {
    const result = await runModel(req, model, { ...inputs, stream: true });
    const events = result instanceof ReadableStream
      ? modelEvents(result)
      : answerEvents(readAnswer(await asObject(result), traits));
    return sseResponse(withMatches(matches, events));
  }
  const reply = readAnswer(await asObject(await runModel(req, model, inputs)), traits);
  const answer = typeof reply.content === "string" ? reply.content : JSON.stringify(reply.content ?? "");
  return json(200, { answer, matches });
}

async function* withMatches(matches, events) {
  yield JSON.stringify({ matches });
  yield* events;
}

// ---- OpenAI-compatible embeddings (the vectors the Worker's index holds) ----

function base64Floats(vector) {
  const bytes = new Uint8Array(new Float32Array(vector).buffer);
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

async function handleEmbeddings(req) {
  const body = await readJson(req.request);
  // `model` is accepted and ignored: the Worker embeds with its EMBEDDING_MODEL.
  optString(body, "model");
  const input = body.input;
  const texts = typeof input === "string" ? [input] : input;
  if (!Array.isArray(texts) || texts.length === 0 || texts.length > MAX_EMBED_INPUTS) {
    throw badRequest(`input: must be a string or an array of 1 to ${MAX_EMBED_INPUTS} strings`);
  }
  texts.forEach((t, i) => {
    if (typeof t !== "string" || t === "") throw badRequest(`input[${i}]: must be a non-empty string`);
  });
  const format = optString(body, "encoding_format") ?? "float";
  if (format !== "float" && format !== "base64") throw badRequest("encoding_format: must be float or base64");
  const dimensions = optInt(body, "dimensions", 1, 1_000_000);
  const made = req.settings.dimensions;
  if (dimensions !== undefined && made !== null && dimensions !== made) {
    throw badRequest(`dimensions: ${requireVar(req.env, "EMBEDDING_MODEL")} makes ${made}-dimension vectors`);
  }
  const vectors = await embed(req, texts);
  // Usage counts whitespace-separated words: the embedding models report no token counts.
  const tokens = texts.reduce((n, t) => n + t.split(/\s+/).filter(Boolean).length, 0);
  return json(200, {
    object: "list",
    data: vectors.map((v, index) => ({ object: "embedding", index, embedding: format === "base64" ? base64Floats(v) : v })),
    model: requireVar(req.env, "EMBEDDING_MODEL"),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

const ROUTES = [
  { path: "/documents", methods: { POST: handleIngest } },
  { prefix: "/documents/", methods: { DELETE: handleDelete } },
  { path: "/query", methods: { POST: handleQuery } },
  { path: "/v1/embeddings", methods: { POST: handleEmbeddings } },
];

export default {
  fetch(request, env) {
    return serve(request, env, ROUTES, (env) => [env.MODEL, env.EMBEDDING_MODEL], ragSettings);
  },
};
