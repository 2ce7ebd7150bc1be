// cfai image Worker, rendered by `cfai render` from templates/workers/image.js.j2; do not edit.
//
//   GET  /health  {"worker", "kind", "template_sha256", "models"}
//   POST /image   {"prompt", "steps"?, "width"?, "height"?, "seed"?, "negative_prompt"?}
//                 -> the image bytes, content-type image/png or image/jpeg
//
// Bindings: AI, MODEL, AUTH_TOKEN (secret); settings var IMAGE (JSON, below).

// ---- HTTP plumbing shared by every kind (templates/workers/_partials/http.js.j2) ----

// sha256 of this module with the value below zeroed; GET /health reports it so a deployed
// Worker proves it runs the reviewed code (cfai.render.module_sha256 recomputes it).
const TEMPLATE_SHA256 = "882af2abb9228f89f1e57293ecc32860075712269baa4ecbae3629edd7abb9a8";
const WORKER = "studio";
const KIND = "image";
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

// ---- image (templates/workers/image.js.j2) ----

// IMAGE: the model's limits from the cfai catalog, narrowed by the Worker's
// max_width/max_height: {content_type, default_width, default_height, default_steps,
// min_width, min_height, max_width, max_height, max_steps, sizable, steps_field}.
// `sizable: false` models make one fixed size and take no width/height.
function imageSettings(env) {
  const image = settingJson(env, "IMAGE");
  if (!isObject(image)) throw misconfigured("IMAGE", "must be a JSON object of the model's limits");
  return { image };
}
const MAX_PROMPT_CHARS = 2048;
const MAX_SEED = 9999999999;

function readImageInputs(image, body) {
  const inputs = { prompt: reqString(body, "prompt", { max: MAX_PROMPT_CHARS }) };
  // flux names the field `steps`, the others `num_steps`.
  inputs[image.steps_field] = optInt(body, "steps", 1, image.max_steps) ?? image.default_steps;
  for (const [name, min, max, fallback] of [
    ["width", image.min_width, image.max_width, image.default_width],
    ["height", image.min_height, image.max_height, image.default_height],
  ]) {
    if (!image.sizable) {
      if (body[name] !== undefined && body[name] !== null) {
        throw badRequest(`${name}: this model makes ${image.default_width}x${image.default_height} images only; leave it out`);
      }
      continue;
    }
    inputs[name] = optInt(body, name, min, max) ?? fallback;
  }
  const seed = optInt(body, "seed", 0, MAX_SEED);
  if (seed !== undefined) inputs.seed = seed;
  const negative = optString(body, "negative_prompt", { max: MAX_PROMPT_CHARS });
  if (negative) inputs.negative_prompt = negative;
  return inputs;
}

function decodeBase64(text) {
  const data = text.replace(/^data:[^,]*;base64,/, "");
  let binary;
  try {
    binary = atob(data);
  } catch {
    throw new HttpError(502, "the model returned an unreadable image");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// Binary models (SDXL, phoenix) reach the Worker as a ReadableStream; base64 models (flux,
// lucid-origin) as {image: "<base64>"}. A JSON reply whose content-type is not exactly
// application/json also arrives as a stream, so a stream that parses as JSON is unwrapped.
async function imageBytes(result) {
  if (result instanceof ReadableStream) {
    const bytes = new Uint8Array(await new Response(result).arrayBuffer());
    if (bytes[0] === 0x7b /* { */) {
      try {
        return imageBytes(JSON.parse(new TextDecoder().decode(bytes)));
      } catch {
        // not JSON after all: fall through to the bytes as they are
      }
    }
    return bytes;
  }
  if (result instanceof ArrayBuffer) return new Uint8Array(result);
  if (ArrayBuffer.isView(result)) return new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
  if (isObject(result) && typeof result.image === "string") return decodeBase64(result.image);
  throw new HttpError(502, "the model returned no image");
}

function imageType(image, bytes) {
  const starts = (...sig) => sig.every((b, i) => bytes[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) {
    return "image/webp";
  }
  return image.content_type;
}

async function handleImage(req) {
  const body = await readJson(req.request);
  const model = requireVar(req.env, "MODEL");
  const inputs = readImageInputs(req.settings.image, body);
  const bytes = await imageBytes(await runModel(req, model, inputs));
  if (bytes.byteLength === 0) throw new HttpError(502, "the model returned an empty image");
  return new Response(bytes, {
    headers: { "content-type": imageType(req.settings.image, bytes) },
  });
}

const ROUTES = [{ path: "/image", methods: { POST: handleImage } }];

export default {
  fetch(request, env) {
    return serve(request, env, ROUTES, (env) => [env.MODEL], imageSettings);
  },
};
