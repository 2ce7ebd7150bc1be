// The chat playground: the conversation goes to POST /chat with stream: true; each event's
// `response` is appended to the answer and its `reasoning` (reasoning models) shown apart.
import { busy, call, events, setupToken } from "/playground.js";

setupToken();
const log = document.getElementById("log");
const input = document.getElementById("message");
const history = [];

function entry(role, text) {
  const item = document.createElement("li");
  item.className = role;
  const who = document.createElement("strong");
  who.textContent = role === "user" ? "You: " : "Worker: ";
  const body = document.createElement("span");
  body.textContent = text;
  item.append(who, body);
  log.append(item);
  return { item, body };
}

busy(document.getElementById("ask"), async () => {
  const text = input.value.trim();
  if (!text) return;
  const response = await call("/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: [...history, { role: "user", content: text }], stream: true }),
  });
  history.push({ role: "user", content: text });
  input.value = "";
  entry("user", text);
  const { item, body } = entry("assistant", "");
  let answer = "";
  let thought = "";
  let reasoning = null;
  for await (const event of events(response)) {
    if (event.reasoning) {
      if (!reasoning) {
        reasoning = document.createElement("details");
        reasoning.className = "reasoning";
        reasoning.innerHTML = "<summary>Reasoning</summary><p></p>";
        item.insertBefore(reasoning, body);
      }
      thought += event.reasoning;
      reasoning.querySelector("p").textContent = thought;
    }
    if (event.response) {
      answer += event.response;
      body.textContent = answer;
    }
  }
  history.push({ role: "assistant", content: answer });
  item.dataset.done = "true";
});
