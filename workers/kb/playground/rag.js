// The rag playground: a document (file or pasted text) goes to POST /documents; a question
// to POST /query, whose answer is shown with the matching chunks and their scores.
import { busy, call, setupToken } from "/playground.js";

setupToken();
const json = (body) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

busy(document.getElementById("upload"), async () => {
  const file = document.getElementById("file").files[0];
  const pasted = document.getElementById("text").value.trim();
  const text = file ? await file.text() : pasted;
  if (!text.trim()) throw new Error("Choose a text file or paste some text first.");
  const id = (file ? file.name : `pasted-${Date.now()}`).replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 60);
  const response = await call("/documents", json({ documents: [{ id, text }] }));
  const out = await response.json();
  document.getElementById("upload-state").textContent =
    `Stored ${id}: ${out.chunks} chunk(s). It is searchable once the index applies the write.`;
});

busy(document.getElementById("ask"), async () => {
  const question = document.getElementById("question").value.trim();
  const response = await call("/query", json({ question }));
  const out = await response.json();
  document.getElementById("answer").textContent = out.answer;
  const table = document.getElementById("matches");
  const rows = table.querySelector("tbody");
  rows.replaceChildren();
  for (const match of out.matches) {
    const row = rows.insertRow();
    row.insertCell().textContent = match.score.toFixed(3);
    row.insertCell().textContent = match.document_id;
    row.insertCell().textContent = match.text;
  }
  table.hidden = out.matches.length === 0;
});
