// The image playground: prompt, size and steps go to POST /image; the bytes are shown.
import { busy, call, setupToken } from "/playground.js";

setupToken();
let shown = null;

busy(document.getElementById("draw"), async () => {
  const [width, height] = document.getElementById("size").value.split("x").map(Number);
  const prompt = document.getElementById("prompt").value.trim();
  const steps = Number(document.getElementById("steps").value);
  document.getElementById("draw-state").textContent = "Drawing…";
  const response = await call("/image", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, width, height, steps }),
  });
  const blob = await response.blob();
  if (shown) URL.revokeObjectURL(shown);
  shown = URL.createObjectURL(blob);
  const picture = document.getElementById("picture");
  picture.alt = prompt;
  picture.src = shown;
  await picture.decode();
  document.getElementById("caption").textContent = `${width} × ${height}, ${steps} steps`;
  document.getElementById("result").hidden = false;
  document.getElementById("draw-state").textContent = "Done.";
});
