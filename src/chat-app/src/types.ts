// What the Worker is bound to (wrangler would generate this with `wrangler types`).
export interface Env {
  AI: Ai;
  ASSETS: Fetcher;
}

// Just enough of the runtime types to compile without @cloudflare/workers-types.
export interface Ai {
  run(model: string, inputs: unknown, options?: { returnRawResponse?: boolean }): Promise<Response>;
}

export interface Fetcher {
  fetch(request: Request): Promise<Response>;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}
