// cfai chat Worker, rendered by `cfai render` from templates/workers/chat.js.j2; do not edit.
//
//   GET  /health               {"worker", "kind", "template_sha256", "models"}
//   POST /chat                 {messages | prompt, stream?, max_tokens?, temperature?, response_format?}
//                              -> {"response", "reasoning"?, "usage"}, or SSE events
//                              {"response", "reasoning"?, "usage"?} ending "data: [DONE]"
//   POST /v1/chat/completions  OpenAI-compatible (use base_url=<worker>/v1, api_key=AUTH_TOKEN):
//                              tools / tool_choice (function calling; tool results come back as
//                              role "tool" messages), image content parts (data: URLs, vision
//                              models only), reasoning in message.reasoning_content
//   POST /feedback             {"log_id", "feedback": 1|-1, "score"?} -> {"ok": true}; log_id is
//                              the cf-aig-log-id header of an answer through the gateway
//
// Bindings: AI, MODEL, MODEL_TRAITS, GATEWAY_ID (when the Worker has a gateway), AUTH_TOKEN
// (secret), LORA (when the Worker has a finetune: the LoRA adapter every model run applies,
// sent as `lora` to env.AI.run); settings vars SYSTEM_PROMPT, MAX_TOKENS, TEMPERATURE, STREAM,
// RESPONSE_SCHEMA (JSON; absent = free text).

// ---- HTTP plumbing shared by every kind (templates/workers/_partials/http.js.j2) ----

// sha256 of this module with the value below zeroed; GET /health reports it so a deployed
// Worker proves it runs the reviewed code (cfai.render.module_sha256 recomputes it).
const TEMPLATE_SHA256 = "ac041c4bf03990da68ae55b7a54f4d53a3a8c1b2b914ffd812c1c21e1b45a5e0";
const WORKER = "chat";
const KIND = "chat";
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

// ---- chat (templates/workers/chat.js.j2) ----

const ROLES = ["system", "user", "assistant", "tool"];
const MAX_TOOLS = 128;

// The stack's settings (vars; see "settings" in the HTTP plumbing above).
function chatSettings(env) {
  return {
    systemPrompt: settingText(env, "SYSTEM_PROMPT"),
    maxTokens: settingInt(env, "MAX_TOKENS", 1),
    temperature: settingNumber(env, "TEMPERATURE", 0),
    stream: settingBool(env, "STREAM"),
    // JSON Schema of answers (JSON mode); null = free text.
    responseSchema: hasSetting(env, "RESPONSE_SCHEMA") ? settingJson(env, "RESPONSE_SCHEMA") : null,
  };
}

// Image content parts: data: URLs only (Workers AI does not fetch URLs), to a model with vision.
function readImagePart(part, path, traits, model) {
  if (!traits.vision || traits.vision === "none") {
    throw badRequest(`${path}: ${model} does not take images (it has no vision); send text only`);
  }
  const url = isObject(part.image_url) ? part.image_url.url : part.image_url;
  if (typeof url !== "string" || !/^data:[\w.+-]+\/[\w.+-]+;base64,/.test(url)) {
    throw badRequest(`${path}.image_url.url: must be a data: URL with base64 image bytes`);
  }
  return url;
}

// A message's content: a string, or OpenAI content parts (text and image_url).
function readContent(m, i, traits, model, images) {
  const path = `messages[${i}].content`;
  if (typeof m.content === "string") return m.content;
  if ((m.content === null || m.content === undefined) && m.role === "assistant") return "";
  if (!Array.isArray(m.content)) throw badRequest(`${path}: must be a string or an array of content parts`);
  const texts = [];
  const parts = [];
  m.content.forEach((part, j) => {
    if (isObject(part) && part.type === "text" && typeof part.text === "string") {
      texts.push(part.text);
      parts.push({ type: "text", text: part.text });
    } else if (isObject(part) && part.type === "image_url") {
      const url = readImagePart(part, `${path}[${j}]`, traits, model);
      if (traits.vision === "image-field") images.push(url.slice(url.indexOf(",") + 1));
      else parts.push({ type: "image_url", image_url: { url } });
    } else {
      throw badRequest(`${path}[${j}]: must be {type: "text", text} or {type: "image_url", image_url: {url}}`);
    }
  });
  return parts.some((p) => p.type === "image_url") ? parts : texts.join("\n");
}

// {messages, image?}: the conversation as the model takes it (llama-3.2-11b-vision takes its
// image as the `image` input, base64).
function readMessages(settings, body, traits, model) {
  const hasMessages = body.messages !== undefined && body.messages !== null;
  const hasPrompt = body.prompt !== undefined && body.prompt !== null;
  if (hasMessages === hasPrompt) throw badRequest("messages: give either messages or prompt");
  const messages = hasPrompt
    ? [{ role: "user", content: reqString(body, "prompt") }]
    : body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badRequest("messages: must be a non-empty array");
  }
  const images = [];
  const out = messages.map((m, i) => {
    if (!isObject(m) || !ROLES.includes(m.role)) {
      throw badRequest(`messages[${i}].role: must be one of ${ROLES.join(", ")}`);
    }
    const message = { role: m.role, content: readContent(m, i, traits, model, images) };
    if (m.role === "tool" && m.tool_call_id !== undefined) {
      message.tool_call_id = optString(m, "tool_call_id", { max: 256, path: `messages[${i}].tool_call_id` });
    }
    if (m.role === "assistant" && Array.isArray(m.tool_calls)) {
      // OpenAI-form models take the calls back as they gave them; native ones as text.
      if (traits.form === "native") message.content = message.content || JSON.stringify(m.tool_calls);
      else message.tool_calls = m.tool_calls;
    }
    return message;
  });
  if (images.length > 1) throw badRequest(`messages: ${model} takes one image per request`);
  const system = settings.systemPrompt;
  const all = system ? [{ role: "system", content: system }, ...out] : out;
  return { messages: all, image: images[0] };
}

// Workers AI response_format from a request's: {type: json_object} or {type: json_schema,
// json_schema: <schema>}. OpenAI wraps the schema as {name, schema, strict}; unwrap it.
function readResponseFormat(settings, body) {
  if (settings.responseSchema !== null) {
    return { type: "json_schema", json_schema: settings.responseSchema };
  }
  const format = optObject(body, "response_format");
  if (format === undefined || format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json_object" };
  if (format.type === "json_schema" && isObject(format.json_schema)) {
    const inner = format.json_schema;
    const schema = isObject(inner.schema) ? inner.schema : inner;
    return { type: "json_schema", json_schema: schema };
  }
  throw badRequest("response_format: must be {type: json_object} or {type: json_schema, json_schema}");
}

// OpenAI function tools: [{type: "function", function: {name, description?, parameters?}}].
function readTools(body) {
  if (body.tools === undefined || body.tools === null) return undefined;
  if (!Array.isArray(body.tools) || body.tools.length > MAX_TOOLS) {
    throw badRequest(`tools: must be an array of at most ${MAX_TOOLS} function tools`);
  }
  body.tools.forEach((t, i) => {
    const fn = isObject(t) ? t.function : undefined;
    if (!isObject(t) || t.type !== "function" || !isObject(fn) || typeof fn.name !== "string" || !fn.name) {
      throw badRequest(`tools[${i}]: must be {type: "function", function: {name, description?, parameters?}}`);
    }
    if (fn.parameters !== undefined && !isObject(fn.parameters)) {
      throw badRequest(`tools[${i}].function.parameters: must be a JSON Schema object`);
    }
  });
  return body.tools;
}

function readToolChoice(body) {
  const choice = body.tool_choice;
  if (choice === undefined || choice === null) return undefined;
  if (["auto", "none", "required"].includes(choice)) return choice;
  if (isObject(choice) && choice.type === "function" && isObject(choice.function) && typeof choice.function.name === "string") {
    return choice;
  }
  throw badRequest('tool_choice: must be "auto", "none", "required" or {type: "function", function: {name}}');
}

function readInputs(req, body, maxTokensField = "max_tokens") {
  const settings = req.settings;
  const model = requireVar(req.env, "MODEL");
  const traits = modelTraits(req.env);
  const { messages, image } = readMessages(settings, body, traits, model);
  const inputs = { messages };
  if (image !== undefined) inputs.image = image;
  // The configured max_tokens caps what a request may ask for.
  const asked = optInt(body, maxTokensField, 1, 1_000_000);
  const max = settings.maxTokens;
  inputs.max_tokens = Math.min(asked === undefined ? max : asked, max);
  const temperature = optNumber(body, "temperature", 0, 5);
  inputs.temperature = temperature === undefined ? settings.temperature : temperature;
  const format = readResponseFormat(settings, body);
  if (format) inputs.response_format = format;
  const tools = readTools(body);
  if (tools) inputs.tools = tools;
  const toolChoice = readToolChoice(body);
  if (toolChoice !== undefined) inputs.tool_choice = toolChoice;
  const effort = optString(body, "reasoning_effort", { max: 16 });
  if (effort !== undefined) {
    if (!["low", "medium", "high"].includes(effort)) throw badRequest("reasoning_effort: must be low, medium or high");
    inputs.reasoning_effort = effort;
  }
  const stream = optBool(body, "stream");
  const streaming = stream === undefined ? settings.stream && !format : stream;
  if (streaming && format) throw badRequest("stream: JSON mode (response_format) cannot stream");
  return { model, traits, inputs, streaming };
}

// /chat's stream is native events whatever the model: `{"response": "<text>"}` (plus
// `reasoning` and `tool_calls` when the model gives them), usage on the last, then [DONE].
// A native model's events pass verbatim; a think-tag model's reasoning moves to `reasoning`;
// OpenAI chunks (qwen3, granite) become native events.
function chatEvent(data, state) {
  let native = false;
  try {
    native = typeof JSON.parse(data).response === "string";
  } catch {
    native = false;
  }
  if (native && !state.thinking) return data;
  const parts = eventParts(data, state);
  const event = { response: parts.text };
  if (parts.reasoning) event.reasoning = parts.reasoning;
  if (parts.toolCalls.length) event.tool_calls = parts.toolCalls;
  if (parts.usage) event.usage = parts.usage;
  return JSON.stringify(event);
}

// The model's SSE stream as /chat's (`chatEvent`), always ending with exactly one [DONE].
// Each read of the model's stream goes out as one chunk holding every event it completed:
// a chunk costs each hop after this one (workerd's write, the router, the client) as much as
// its events, so writing one an event made the Worker's part of a stream several times
// dearer. Nothing waits: what a read brings is sent before the next read. A failure
// mid-stream becomes a last error event, then [DONE], as in `sseResponse`.
function chatStream(stream, traits) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const state = { thinking: traits.reasoning === "think-tag" };
  let buffer = "";
  let finished = false;
  // The events `buffer` completes (all of them once the model's stream `ended`).
  const events = (ended) => {
    const blocks = buffer.split("\n\n");
    buffer = ended ? "" : blocks.pop();
    let out = "";
    for (const block of blocks) {
      const data = eventData(block);
      if (data === undefined) continue;
      if (data === "[DONE]") {
        finished = true;
        break;
      }
      out += `data: ${chatEvent(data, state)}\n\n`;
    }
    if (ended || finished) {
      finished = true;
      out += "data: [DONE]\n\n";
    }
    return out;
  };
  const body = new ReadableStream({
    async pull(controller) {
      try {
        let out = "";
        while (!out && !finished) {
          const { done, value } = await reader.read();
          buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
          if (buffer.includes("\r")) buffer = buffer.replace(/\r\n/g, "\n");
          out = events(done);
        }
        if (out) controller.enqueue(encoder.encode(out));
      } catch (err) {
        console.error("cfai: stream failed", String((err && err.message) || err));
        const error = { error: { code: "upstream_error", message: "the model stream failed" } };
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(error)}\n\ndata: [DONE]\n\n`));
        finished = true;
      }
      if (finished) {
        controller.close();
        reader.cancel().catch(() => {});
      }
    },
    async cancel() {
      await reader.cancel().catch(() => {});
    },
  });
  return new Response(body, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}

async function handleChat(req) {
  const body = await readJson(req.request);
  const { model, traits, inputs, streaming } = readInputs(req, body);
  if (req.env.LORA !== undefined) inputs.lora = requireVar(req.env, "LORA");
  if (streaming) {
    const result = await runModel(req, model, { ...inputs, stream: true });
    if (result instanceof ReadableStream) return chatStream(result, traits);
    return sseResponse(answerEvents(readAnswer(await asObject(result), traits)));
  }
  const answer = readAnswer(await asObject(await runModel(req, model, inputs)), traits);
  let response = answer.content;
  // JSON mode answers an object; some models still send the JSON as text.
  if (inputs.response_format && typeof response === "string") {
    try {
      response = JSON.parse(response);
    } catch {
      throw new HttpError(502, "the model's answer is not valid JSON");
    }
  }
  const out = { response: response === undefined ? null : response };
  if (answer.reasoning) out.reasoning = answer.reasoning;
  if (answer.toolCalls.length) out.tool_calls = answer.toolCalls;
  out.usage = answer.usage;
  return json(200, out);
}

// ---- OpenAI-compatible chat completions ----

function completionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "chatcmpl-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function openaiUsage(usage) {
  const prompt = (usage && usage.prompt_tokens) || 0;
  const completion = (usage && usage.completion_tokens) || 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function finishReason(toolCalls, usage, maxTokens) {
  if (toolCalls) return "tool_calls";
  return usage.completion_tokens >= maxTokens ? "length" : "stop";
}

async function handleCompletions(req) {
  const body = await readJson(req.request);
  // `model` in the request is accepted and ignored: the Worker serves its configured model.
  optString(body, "model");
  const field = body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const { model, traits, inputs, streaming } = readInputs(req, body, field);
  if (req.env.LORA !== undefined) inputs.lora = requireVar(req.env, "LORA");
  const streamOptions = optObject(body, "stream_options") || {};
  const base = { id: completionId(), created: Math.floor(Date.now() / 1000), model };
  const includeUsage = streamOptions.include_usage === true;
  if (streaming) {
    const result = await runModel(req, model, { ...inputs, stream: true });
    const events = result instanceof ReadableStream
      ? modelEvents(result)
      : answerEvents(readAnswer(await asObject(result), traits));
    return sseResponse(completionChunks(events, base, inputs.max_tokens, includeUsage, traits));
  }
  const answer = readAnswer(await asObject(await runModel(req, model, inputs)), traits);
  const content = answer.content === null || typeof answer.content === "string" ? answer.content : JSON.stringify(answer.content);
  const usage = openaiUsage(answer.usage);
  const message = { role: "assistant", content: answer.toolCalls.length ? content || null : content ?? "" };
  if (answer.reasoning) message.reasoning_content = answer.reasoning;
  if (answer.toolCalls.length) message.tool_calls = answer.toolCalls;
  return json(200, {
    ...base,
    object: "chat.completion",
    choices: [{ index: 0, message, finish_reason: finishReason(answer.toolCalls.length > 0, usage, inputs.max_tokens) }],
    usage,
  });
}

async function* completionChunks(events, base, maxTokens, includeUsage, traits) {
  const chunk = (delta, finish, extra = {}) =>
    JSON.stringify({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...extra,
    });
  yield chunk({ role: "assistant", content: "" }, null);
  let usage;
  let called = false;
  const state = { thinking: traits.reasoning === "think-tag" };
  for await (const data of events) {
    if (data === "[DONE]") break;
    const parts = eventParts(data, state);
    if (parts.usage) usage = parts.usage;
    if (parts.reasoning) yield chunk({ reasoning_content: parts.reasoning }, null);
    if (parts.toolCalls.length) {
      called = true;
      yield chunk({ tool_calls: parts.toolCalls }, null);
    }
    if (parts.text) yield chunk({ content: parts.text }, null);
  }
  const final = openaiUsage(usage);
  yield chunk({}, finishReason(called, final, maxTokens));
  if (includeUsage) {
    yield JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [], usage: final });
  }
  yield "[DONE]";
}

// ---- feedback on a gateway log ----

// A log id is the cf-aig-log-id response header: letters, digits, '-' and '_' (AI Gateway's
// are ULIDs). Anything else could walk the binding's log path to another gateway's logs
// (workerd's aig-api.ts puts the id in the URL path as given).
const LOG_ID = /^[A-Za-z0-9_-]{1,128}$/;

async function handleFeedback(req) {
  const body = await readJson(req.request);
  if (!req.env.GATEWAY_ID) throw badRequest("this Worker has no AI Gateway, so there is no log to rate");
  const logId = reqString(body, "log_id", { max: 128 });
  if (!LOG_ID.test(logId)) {
    throw badRequest("log_id: must be the cf-aig-log-id header of an answer (letters, digits, '-' and '_')");
  }
  if (body.feedback !== 1 && body.feedback !== -1) throw badRequest("feedback: must be 1 or -1");
  const patch = { feedback: body.feedback };
  const score = optNumber(body, "score", 0, 100);
  if (score !== undefined) patch.score = score;
  try {
    await req.env.AI.gateway(req.env.GATEWAY_ID).patchLog(encodeURIComponent(logId), patch);
  } catch (err) {
    if (err && err.name === "AiGatewayLogNotFound") {
      throw new HttpError(404, `log_id: no log ${logId} in this Worker's gateway`);
    }
    console.error("cfai: patchLog failed", String((err && err.message) || err));
    throw new HttpError(502, "the AI Gateway feedback call failed");
  }
  return json(200, { ok: true });
}

const ROUTES = [
  { path: "/chat", methods: { POST: handleChat } },
  { path: "/v1/chat/completions", methods: { POST: handleCompletions } },
  { path: "/feedback", methods: { POST: handleFeedback } },
];

export default {
  fetch(request, env) {
    return serve(request, env, ROUTES, (env) => [env.MODEL], chatSettings);
  },
};
