// cfai chat Worker, rendered by `cfai render` from templates/workers/chat.js.j2; do not edit.
//
//   GET  /health               {"worker", "kind", "template_sha256", "models"}
//   POST /chat                 {messages | prompt, stream?, max_tokens?, temperature?, response_format?}
//                              -> {"response", "usage"}, or SSE events ending "data: [DONE]"
//   POST /v1/chat/completions  OpenAI-compatible (use base_url=<worker>/v1, api_key=AUTH_TOKEN)
//   POST /feedback             {"log_id", "feedback": 1|-1, "score"?} -> {"ok": true}
//
// Bindings: AI, MODEL, GATEWAY_ID (when the Worker has a gateway), AUTH_TOKEN (secret);
// settings vars SYSTEM_PROMPT, MAX_TOKENS, TEMPERATURE, STREAM, RESPONSE_SCHEMA (JSON; absent
// = free text).

// ---- HTTP plumbing shared by every kind (templates/workers/_partials/http.js.j2) ----

// sha256 of this module with the value below zeroed; GET /health reports it so a deployed
// Worker proves it runs the reviewed code (cfai.render.module_sha256 recomputes it).
const TEMPLATE_SHA256 = "7ae26d396e137866eebd15adc56bc2c2a45cd661a62af3137d0ef10d65b68fc4";
const WORKER = "assistant";
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
  if (!match || !(await sameSecret(match[1], expected))) {
    throw new HttpError(401, "missing or wrong bearer token", {
      "www-authenticate": 'Bearer realm="cfai"',
    });
  }
}

// Constant-time comparison: compare SHA-256 digests byte by byte without early exit, so
// timing reveals neither the token's content nor its length. (crypto.subtle.timingSafeEqual
// exists only in workerd; this works in every runtime.)
async function sameSecret(given, expected) {
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(given)),
    crypto.subtle.digest("SHA-256", enc.encode(expected)),
  ]);
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
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
        ? await req.env.AI.run(model, inputs, options)
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
      console.error("cfai: Workers AI call failed", String((err && err.message) || err));
      throw new HttpError(502, "the Workers AI call failed");
    }
  }
}

function noteLogId(req) {
  if (req.env.GATEWAY_ID && req.env.AI && req.env.AI.aiGatewayLogId) {
    req.logId = req.env.AI.aiGatewayLogId;
  }
}

async function vectorize(what, call) {
  try {
    return await call();
  } catch (err) {
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

// Text delta of one Workers AI stream event: `response` (Llama-style) or
// `choices[0].delta.content` (newer models); usage rides on the last event.
function eventDelta(data) {
  let event;
  try {
    event = JSON.parse(data);
  } catch {
    return { text: "", usage: undefined };
  }
  let text = "";
  if (typeof event.response === "string") text = event.response;
  else if (event.choices && event.choices[0] && event.choices[0].delta) {
    text = event.choices[0].delta.content || "";
  }
  return { text, usage: isObject(event.usage) ? event.usage : undefined };
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

function readMessages(settings, body) {
  const hasMessages = body.messages !== undefined && body.messages !== null;
  const hasPrompt = body.prompt !== undefined && body.prompt !== null;
  if (hasMessages === hasPrompt) throw badRequest("messages: give either messages or prompt");
  const messages = hasPrompt
    ? [{ role: "user", content: reqString(body, "prompt") }]
    : body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw badRequest("messages: must be a non-empty array");
  }
  messages.forEach((m, i) => {
    if (!isObject(m) || !ROLES.includes(m.role)) {
      throw badRequest(`messages[${i}].role: must be one of ${ROLES.join(", ")}`);
    }
    if (typeof m.content !== "string") throw badRequest(`messages[${i}].content: must be a string`);
  });
  const out = messages.map((m) => ({ role: m.role, content: m.content }));
  const system = settings.systemPrompt;
  return system ? [{ role: "system", content: system }, ...out] : out;
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

function readInputs(settings, body, maxTokensField = "max_tokens") {
  const inputs = { messages: readMessages(settings, body) };
  // The configured max_tokens caps what a request may ask for.
  const asked = optInt(body, maxTokensField, 1, 1_000_000);
  const max = settings.maxTokens;
  inputs.max_tokens = Math.min(asked === undefined ? max : asked, max);
  const temperature = optNumber(body, "temperature", 0, 5);
  inputs.temperature = temperature === undefined ? settings.temperature : temperature;
  const format = readResponseFormat(settings, body);
  if (format) inputs.response_format = format;
  const stream = optBool(body, "stream");
  const streaming = stream === undefined ? settings.stream && !format : stream;
  if (streaming && format) throw badRequest("stream: JSON mode (response_format) cannot stream");
  return { inputs, streaming };
}

async function handleChat(req) {
  const body = await readJson(req.request);
  const model = requireVar(req.env, "MODEL");
  const { inputs, streaming } = readInputs(req.settings, body);
  if (streaming) {
    const stream = await runModel(req, model, { ...inputs, stream: true });
    return sseResponse(modelEvents(stream));
  }
  const result = await asObject(await runModel(req, model, inputs));
  let response = result.response;
  // JSON mode answers an object; some models still send the JSON as text.
  if (inputs.response_format && typeof response === "string") {
    try {
      response = JSON.parse(response);
    } catch {
      throw new HttpError(502, "the model's answer is not valid JSON");
    }
  }
  return json(200, { response: response === undefined ? null : response, usage: result.usage || null });
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

async function handleCompletions(req) {
  const body = await readJson(req.request);
  const model = requireVar(req.env, "MODEL");
  // `model` in the request is accepted and ignored: the Worker serves its configured model.
  optString(body, "model");
  const field = body.max_completion_tokens !== undefined ? "max_completion_tokens" : "max_tokens";
  const { inputs, streaming } = readInputs(req.settings, body, field);
  const streamOptions = optObject(body, "stream_options") || {};
  const base = { id: completionId(), created: Math.floor(Date.now() / 1000), model };
  if (streaming) {
    const stream = await runModel(req, model, { ...inputs, stream: true });
    return sseResponse(completionChunks(stream, base, inputs.max_tokens, streamOptions.include_usage === true));
  }
  const result = await asObject(await runModel(req, model, inputs));
  const content = typeof result.response === "string" ? result.response : JSON.stringify(result.response ?? "");
  const usage = openaiUsage(result.usage);
  return json(200, {
    ...base,
    object: "chat.completion",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content },
        finish_reason: usage.completion_tokens >= inputs.max_tokens ? "length" : "stop",
      },
    ],
    usage,
  });
}

async function* completionChunks(stream, base, maxTokens, includeUsage) {
  const chunk = (delta, finish, extra = {}) =>
    JSON.stringify({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...extra,
    });
  yield chunk({ role: "assistant", content: "" }, null);
  let usage;
  for await (const data of modelEvents(stream)) {
    if (data === "[DONE]") break;
    const delta = eventDelta(data);
    if (delta.usage) usage = delta.usage;
    if (delta.text) yield chunk({ content: delta.text }, null);
  }
  const final = openaiUsage(usage);
  yield chunk({}, final.completion_tokens >= maxTokens ? "length" : "stop");
  if (includeUsage) {
    yield JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [], usage: final });
  }
  yield "[DONE]";
}

// ---- feedback on a gateway log ----

async function handleFeedback(req) {
  const body = await readJson(req.request);
  if (!req.env.GATEWAY_ID) throw badRequest("this Worker has no AI Gateway, so there is no log to rate");
  const logId = reqString(body, "log_id", { max: 128 });
  if (body.feedback !== 1 && body.feedback !== -1) throw badRequest("feedback: must be 1 or -1");
  const patch = { feedback: body.feedback };
  const score = optNumber(body, "score", 0, 100);
  if (score !== undefined) patch.score = score;
  try {
    await req.env.AI.gateway(req.env.GATEWAY_ID).patchLog(logId, patch);
  } catch (err) {
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
