// Static assets of a Worker on the cfai local platform, with Cloudflare's routing
// (https://developers.cloudflare.com/workers/static-assets/routing/). Written to the state
// directory beside a version's modules by cfai.local.runtime; workerd runs it twice per
// version with assets:
//
// - in front of the Worker (the socket's service), with USER bound to the Worker: a request
//   that matches an asset gets the asset, every other one goes to the Worker, unless
//   run_worker_first sends it there first;
// - as the Worker's assets binding (env.ASSETS), without USER: it serves assets only, with
//   not_found_handling applied (what `env.ASSETS.fetch` does on Cloudflare).
//
// Files come from a workerd `disk` service (DISK) holding them by hash; CONFIG maps each
// served path to [hash, content type] and carries the version's assets config.

const NAVIGATE_FROM = "2025-04-01"; // assets_navigation_prefers_asset_serving

function globToRegExp(glob) {
  const body = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${body}$`);
}

function workerFirst(config, path) {
  const rule = config.run_worker_first;
  if (rule === true) return true;
  if (!Array.isArray(rule)) return false;
  const excluded = rule.filter((g) => g.startsWith("!")).map((g) => globToRegExp(g.slice(1)));
  if (excluded.some((re) => re.test(path))) return false;
  return rule.filter((g) => !g.startsWith("!")).some((g) => globToRegExp(g).test(path));
}

// What a path resolves to under html_handling: {asset} to serve, {redirect} to send, or null.
function resolve(path, has, mode) {
  const html = (p) => p.endsWith(".html");
  if (mode === "none") return has(path) ? { asset: path } : null;
  if (path.endsWith("/index.html") && has(path)) {
    const folder = path.slice(0, -"index.html".length);
    if (mode === "drop-trailing-slash" && folder !== "/") return { redirect: folder.slice(0, -1) };
    return { redirect: folder };
  }
  if (html(path) && has(path)) {
    const bare = path.slice(0, -".html".length);
    return { redirect: mode === "force-trailing-slash" ? `${bare}/` : bare };
  }
  if (path.endsWith("/")) {
    if (has(`${path}index.html`)) {
      if (mode === "drop-trailing-slash" && path !== "/") return { redirect: path.slice(0, -1) };
      return { asset: `${path}index.html` };
    }
    const file = `${path.slice(0, -1)}.html`;
    if (path !== "/" && has(file)) {
      return mode === "force-trailing-slash" ? { asset: file } : { redirect: path.slice(0, -1) };
    }
    return null;
  }
  if (has(path)) return { asset: path };
  if (has(`${path}.html`)) {
    return mode === "force-trailing-slash" ? { redirect: `${path}/` } : { asset: `${path}.html` };
  }
  if (has(`${path}/index.html`)) {
    return mode === "drop-trailing-slash" ? { asset: `${path}/index.html` } : { redirect: `${path}/` };
  }
  return null;
}

function notFound(config, path, has) {
  if (config.not_found_handling === "single-page-application" && has("/index.html")) {
    return { asset: "/index.html", status: 200 };
  }
  if (config.not_found_handling === "404-page") {
    let folder = path.slice(0, path.lastIndexOf("/") + 1);
    for (;;) {
      if (has(`${folder}404.html`)) return { asset: `${folder}404.html`, status: 404 };
      if (folder === "/") break;
      folder = folder.slice(0, folder.slice(0, -1).lastIndexOf("/") + 1);
    }
  }
  return null;
}

async function serve(env, request, asset, status) {
  const [hash, type] = env.CONFIG.files[asset];
  const etag = `"${hash}"`;
  const headers = new Headers({ etag, "cache-control": "public, max-age=0, must-revalidate" });
  if (type) headers.set("content-type", type);
  if (status === 200 && request.headers.get("if-none-match") === etag) {
    return new Response(null, { status: 304, headers });
  }
  const file = await env.DISK.fetch(`http://assets/${hash}`);
  if (!file.ok) return new Response("asset file missing on the local platform", { status: 500 });
  const body = request.method === "HEAD" ? null : file.body;
  return new Response(body, { status, headers });
}

function decodePath(url) {
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    return url.pathname;
  }
}

export default {
  async fetch(request, env) {
    const config = env.CONFIG;
    const url = new URL(request.url);
    const path = decodePath(url);
    const has = (p) => Object.hasOwn(config.files, p);
    const hasWorker = env.USER !== undefined;
    if (hasWorker && workerFirst(config, path)) return env.USER.fetch(request);
    if (request.method === "GET" || request.method === "HEAD") {
      const found = resolve(path, has, config.html_handling);
      if (found?.redirect) {
        const location = encodeURI(found.redirect) + url.search;
        return new Response(null, { status: 307, headers: { location } });
      }
      if (found) return serve(env, request, found.asset, 200);
      const navigation = request.headers.get("sec-fetch-mode") === "navigate";
      const spaFirst = !hasWorker || (navigation && config.compatibility_date >= NAVIGATE_FROM);
      const fallback = notFound(config, path, has);
      if (fallback && (!hasWorker || (spaFirst && fallback.status === 200))) {
        return serve(env, request, fallback.asset, fallback.status);
      }
    }
    if (hasWorker) return env.USER.fetch(request);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(null, { status: 405, headers: { allow: "GET, HEAD" } });
    }
    return new Response(null, { status: 404 });
  },
};
