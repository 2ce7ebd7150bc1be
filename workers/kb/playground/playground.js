// Shared by the cfai playground pages: the bearer token the user types (kept in this tab's
// sessionStorage only, never in the page or the Worker), authenticated calls to the Worker
// and errors shown where a screen reader announces them.
const TOKEN_KEY = "cfai-playground-token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const state = document.getElementById("token-state");
  const show = () => {
    state.textContent = token() ? "Token saved for this tab." : "No token yet: requests will be refused.";
  };
  input.value = token();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    show();
  });
  show();
}

export function say(message) {
  document.getElementById("error").textContent = message;
}

// fetch() with the token; a refusal becomes an Error whose message is for the user.
export async function call(path, init = {}) {
  say("");
  const headers = new Headers(init.headers || {});
  if (token()) headers.set("authorization", `Bearer ${token()}`);
  const response = await fetch(path, { ...init, headers });
  if (response.ok) return response;
  let detail = response.statusText;
  try {
    const body = await response.json();
    detail = body?.error?.message || detail;
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 401) {
    throw new Error(`401 Unauthorized: ${detail}. Check the bearer token above.`);
  }
  throw new Error(`${response.status}: ${detail}`);
}

// Server-sent events of a response, as parsed JSON objects (ends at [DONE]).
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const parts = buffer.split("\n\n");
    buffer = parts.pop();
    for (const part of parts) {
      const data = part.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (!data) continue;
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

// Runs `work` with the form's button disabled; its errors go to the alert region.
export function busy(form, work) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await work();
    } catch (err) {
      say(err.message);
    } finally {
      button.disabled = false;
    }
  });
}
