// A team's existing Worker brought under cfai as kind `custom`: cfai uploads this file
// byte-for-byte, binds what it declares (AI, VECTORIZE, GATEWAY_ID, MODE, AUTH_TOKEN) and
// runs it locally and in the contract suite like the generated Workers.
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/health") {
      return Response.json({ worker: "legacy", kind: "custom", mode: env.MODE });
    }
    if (request.headers.get("authorization") !== `Bearer ${env.AUTH_TOKEN}`) {
      return Response.json({ error: { code: "unauthorized", message: "missing or wrong bearer token" } }, { status: 401 });
    }
    if (url.pathname === "/summarize" && request.method === "POST") {
      let body;
      try {
        body = await request.json();
      } catch {
        return Response.json({ error: { code: "bad_request", message: "body must be JSON" } }, { status: 400 });
      }
      if (typeof body.text !== "string" || body.text.length === 0) {
        return Response.json({ error: { code: "bad_request", message: "text: required string" } }, { status: 400 });
      }
      const out = await env.AI.run(
        "@cf/meta/llama-3.1-8b-instruct",
        { messages: [{ role: "system", content: "Summarize in one sentence." }, { role: "user", content: body.text }] },
        env.GATEWAY_ID ? { gateway: { id: env.GATEWAY_ID } } : {},
      );
      return Response.json({ summary: out.response });
    }
    return Response.json({ error: { code: "not_found", message: "no such route" } }, { status: 404 });
  },
};
