// Sends the conversation to /api/chat and writes the streamed answer (server-sent events of
// {"response": "..."} chunks, then [DONE]) into the page as it arrives.
const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("message");
const history = [];

function line(role, text) {
  const item = document.createElement("li");
  item.className = role;
  item.textContent = text;
  log.append(item);
  return item;
}

async function send(text) {
  history.push({ role: "user", content: text });
  line("user", text);
  const out = line("assistant", "");
  const response = await fetch("/api/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages: history }),
  });
  if (!response.ok || !response.body) {
    out.textContent = `Error ${response.status}`;
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let answer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const events = buffer.split("\n\n");
    buffer = events.pop();
    for (const event of events) {
      const data = event.replace(/^data: ?/, "");
      if (data === "[DONE]") continue;
      try {
        answer += JSON.parse(data).response ?? "";
      } catch {
        continue;
      }
      out.textContent = answer;
    }
  }
  history.push({ role: "assistant", content: answer });
  out.dataset.done = "true";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
});
