// cfai speech Worker, rendered by `cfai render` from templates/workers/speech.js.j2; do not edit.
//
//   GET  /health                   {"worker", "kind", "template_sha256", "models"}
//   POST /speak                    {"text", "voice"?} -> audio/mpeg
//   POST /transcribe               the audio as the body (audio/*), or multipart/form-data with
//                                  a "file" -> {"text", "segments"?, "language"?, "duration"?}
//   POST /v1/audio/speech          OpenAI-compatible: {"model", "input", "voice", "response_format"?: "mp3"}
//   POST /v1/audio/transcriptions  OpenAI-compatible: multipart "file", "model", "language"?,
//                                  "prompt"?, "response_format"?: json|text|verbose_json|vtt|srt
//
// A route whose model the Worker does not declare answers 404. Bindings: AI, STT_MODEL and/or
// TTS_MODEL, SPEECH_TRAITS, GATEWAY_ID (when the Worker has a gateway), AUTH_TOKEN (secret);
// settings var MAX_TEXT_CHARS.

// ---- HTTP plumbing shared by every kind (templates/workers/_partials/http.js.j2) ----

// sha256 of this module with the value below zeroed; GET /health reports it so a deployed
// Worker proves it runs the reviewed code (cfai.render.module_sha256 recomputes it).
const TEMPLATE_SHA256 = "88a1464e2b27a81f172d79a4631a8191bc953f1587c81a76c7e5a7931163e73c";
const WORKER = "voice";
const KIND = "speech";
const AUTH = true;
const MAX_REQUEST_BYTES = 26214400;

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

// ---- speech (templates/workers/speech.js.j2) ----

// The stack's settings (vars; see "settings" in the HTTP plumbing above).
function speechSettings(env) {
  return { maxTextChars: settingInt(env, "MAX_TEXT_CHARS", 1) };
}
const TRANSCRIPT_FORMATS = ["json", "text", "verbose_json", "vtt", "srt"];

// What the models take (the SPEECH_TRAITS var, from cfai's catalog): stt.input is how the
// recognition model takes audio ("base64": whisper-large-v3-turbo, "binary": nova-3 takes
// the body itself, "byte-array": whisper); tts.voices the synthesis model's speakers.
function speechTraits(env) {
  try {
    const traits = JSON.parse(env.SPEECH_TRAITS || "{}");
    return isObject(traits) ? traits : {};
  } catch {
    return {};
  }
}

function modelFor(req, name, what) {
  const model = req.env[name];
  if (typeof model !== "string" || model === "") {
    throw new HttpError(404, `this Worker does not ${what} (it declares no ${name.toLowerCase()})`);
  }
  return model;
}

// ---- text to speech ----

function readVoice(value, path, traits) {
  const tts = traits.tts || {};
  if (value === undefined || value === null) return tts.voice || undefined;
  if (typeof value !== "string" || value === "") throw badRequest(`${path}: must be a string`);
  const voices = Array.isArray(tts.voices) ? tts.voices : [];
  if (voices.length && !voices.includes(value)) throw badRequest(`${path}: must be one of ${voices.join(", ")}`);
  return value;
}

async function speech(req, text, voice) {
  const model = modelFor(req, "TTS_MODEL", "speak");
  const inputs = { text };
  if (voice) inputs.speaker = voice;
  const result = await runModel(req, model, inputs);
  let body = result;
  if (!(result instanceof ReadableStream)) {
    // Some forms answer {audio: "<base64>"} instead of the bytes.
    const audio = isObject(result) ? result.audio : undefined;
    if (typeof audio !== "string") throw new HttpError(502, "the speech model returned no audio");
    body = Uint8Array.from(atob(audio), (c) => c.charCodeAt(0));
  }
  return new Response(body, { headers: { "content-type": "audio/mpeg" } });
}

async function handleSpeak(req) {
  const body = await readJson(req.request);
  const text = reqString(body, "text", { max: req.settings.maxTextChars });
  const voice = readVoice(body.voice, "voice", speechTraits(req.env));
  return speech(req, text, voice);
}

async function handleOpenAISpeech(req) {
  const body = await readJson(req.request);
  optString(body, "model"); // accepted and ignored: the Worker speaks with its TTS_MODEL
  const text = reqString(body, "input", { max: req.settings.maxTextChars });
  const voice = readVoice(body.voice, "voice", speechTraits(req.env));
  const format = optString(body, "response_format") ?? "mp3";
  if (format !== "mp3") throw badRequest("response_format: only mp3 (audio/mpeg) is offered");
  const speed = optNumber(body, "speed", 0.25, 4);
  if (speed !== undefined && speed !== 1) throw badRequest("speed: only 1 is offered");
  return speech(req, text, voice);
}

// ---- speech to text ----

function base64Of(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// The audio of a request: the body itself (audio/*, application/octet-stream) or the `file`
// part of a multipart form, read within MAX_REQUEST_BYTES; and the form's other fields.
async function readAudio(request) {
  const type = (request.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
  const bytes = await readBody(request);
  if (type === "multipart/form-data") {
    let form;
    try {
      form = await new Response(bytes, { headers: { "content-type": request.headers.get("content-type") } }).formData();
    } catch {
      throw badRequest("body: not a valid multipart/form-data body");
    }
    const file = form.get("file");
    if (!file || typeof file === "string") throw badRequest("file: required (the audio, as a file part)");
    const audio = new Uint8Array(await file.arrayBuffer());
    if (audio.length === 0) throw badRequest("file: must not be empty");
    const fields = {};
    for (const [k, v] of form.entries()) if (typeof v === "string") fields[k] = v;
    return { audio, contentType: file.type || "audio/mpeg", fields };
  }
  if (!type.startsWith("audio/") && !type.startsWith("video/") && type !== "application/octet-stream") {
    throw badRequest("content-type: send the audio as audio/* (or application/octet-stream), or multipart/form-data with a file");
  }
  if (bytes.length === 0) throw badRequest("body: the audio must not be empty");
  return { audio: bytes, contentType: type === "application/octet-stream" ? "audio/mpeg" : type, fields: {} };
}

// {text, segments: [{start, end, text}], language?, duration?} of either model form.
function readTranscript(result) {
  if (isObject(result.results)) {
    const channel = (result.results.channels || [])[0] || {};
    const alt = (channel.alternatives || [])[0] || {};
    const words = Array.isArray(alt.words) ? alt.words : [];
    const text = typeof alt.transcript === "string" ? alt.transcript : "";
    const end = words.length ? words[words.length - 1].end : 0;
    return { text, segments: words.length ? [{ start: words[0].start, end, text }] : [], duration: end };
  }
  if (typeof result.text !== "string") throw new HttpError(502, "the speech model returned no text");
  const segments = (Array.isArray(result.segments) ? result.segments : []).map((s) => ({ start: s.start, end: s.end, text: s.text }));
  const info = isObject(result.transcription_info) ? result.transcription_info : {};
  const out = { text: result.text, segments };
  if (info.language) out.language = info.language;
  if (typeof info.duration === "number") out.duration = info.duration;
  return out;
}

const LANGUAGE = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

async function transcribe(req, audio, contentType, fields) {
  const model = modelFor(req, "STT_MODEL", "transcribe");
  const traits = speechTraits(req.env).stt || {};
  const inputs = {};
  if (fields.language !== undefined) {
    if (!LANGUAGE.test(fields.language)) throw badRequest("language: must be a language code such as en or pt-BR");
    inputs.language = fields.language;
  }
  if (traits.input === "binary") {
    inputs.audio = { body: new Response(audio).body, contentType };
  } else {
    if (fields.prompt) inputs.initial_prompt = fields.prompt.slice(0, 1000);
    inputs.audio = traits.input === "byte-array" ? Array.from(audio) : base64Of(audio);
  }
  return readTranscript(await asObject(await runModel(req, model, inputs)));
}

async function handleTranscribe(req) {
  const { audio, contentType, fields } = await readAudio(req.request);
  const language = new URL(req.request.url).searchParams.get("language");
  if (language !== null) fields.language = language;
  return json(200, await transcribe(req, audio, contentType, fields));
}

function stamp(seconds, comma) {
  const ms = Math.round((seconds || 0) * 1000);
  const pad = (n, w) => String(n).padStart(w, "0");
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${comma ? "," : "."}${pad(ms % 1000, 3)}`;
}

async function handleOpenAITranscription(req) {
  const type = (req.request.headers.get("content-type") || "").split(";")[0].trim().toLowerCase();
  if (type !== "multipart/form-data") throw badRequest("content-type: must be multipart/form-data with a file");
  const { audio, contentType, fields } = await readAudio(req.request);
  const format = fields.response_format || "json";
  if (!TRANSCRIPT_FORMATS.includes(format)) throw badRequest(`response_format: must be one of ${TRANSCRIPT_FORMATS.join(", ")}`);
  const t = await transcribe(req, audio, contentType, fields);
  const segments = t.segments.map((s, id) => ({ id, seek: 0, start: s.start, end: s.end, text: s.text, tokens: [], temperature: 0, avg_logprob: 0, compression_ratio: 1, no_speech_prob: 0 }));
  if (format === "text") return new Response(t.text, { headers: { "content-type": "text/plain; charset=utf-8" } });
  if (format === "vtt" || format === "srt") {
    const cues = segments.map((s, i) =>
      `${format === "srt" ? `${i + 1}\n` : ""}${stamp(s.start, format === "srt")} --> ${stamp(s.end, format === "srt")}\n${s.text}\n`,
    );
    const text = (format === "vtt" ? "WEBVTT\n\n" : "") + cues.join("\n");
    return new Response(text, { headers: { "content-type": "text/plain; charset=utf-8" } });
  }
  if (format === "verbose_json") {
    return json(200, { task: "transcribe", language: t.language || fields.language || "en", duration: t.duration || 0, text: t.text, segments });
  }
  return json(200, { text: t.text });
}

const ROUTES = [
  { path: "/speak", methods: { POST: handleSpeak } },
  { path: "/transcribe", methods: { POST: handleTranscribe } },
  { path: "/v1/audio/speech", methods: { POST: handleOpenAISpeech } },
  { path: "/v1/audio/transcriptions", methods: { POST: handleOpenAITranscription } },
];

export default {
  fetch(request, env) {
    return serve(
      request,
      env,
      ROUTES,
      (env) => [env.STT_MODEL, env.TTS_MODEL].filter(Boolean),
      speechSettings,
    );
  },
};
