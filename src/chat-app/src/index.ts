// A chat app in the shape of Cloudflare's llm-chat-app-template: the page comes from static
// assets (the ASSETS binding over public/), /api/chat streams the model's answer through as
// the AI binding returned it (returnRawResponse), and nodejs_compat gives node:crypto.
import { randomUUID } from "node:crypto";
import type { ChatMessage, Env } from "./types";

const MODEL = "@cf/meta/llama-3.1-8b-instruct";
const SYSTEM = "You are a helpful, friendly assistant. Answer briefly.";

async function chat(request: Request, env: Env): Promise<Response> {
  let messages: ChatMessage[];
  try {
    ({ messages } = (await request.json()) as { messages: ChatMessage[] });
    if (!Array.isArray(messages)) throw new TypeError("messages must be an array");
  } catch (err) {
    return Response.json({ error: `bad request: ${(err as Error).message}` }, { status: 400 });
  }
  if (!messages.some((m) => m.role === "system")) {
    messages = [{ role: "system", content: SYSTEM }, ...messages];
  }
  const answer = await env.AI.run(
    MODEL,
    { messages, max_tokens: 256, stream: true },
    { returnRawResponse: true },
  );
  const headers = new Headers(answer.headers);
  headers.set("x-chat-id", randomUUID());
  return new Response(answer.body, { status: answer.status, headers });
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/api/")) {
      return env.ASSETS.fetch(request);
    }
    if (url.pathname === "/api/chat") {
      if (request.method !== "POST") {
        return new Response("Method not allowed", { status: 405, headers: { allow: "POST" } });
      }
      return chat(request, env);
    }
    return Response.json({ error: "not found" }, { status: 404 });
  },
};
