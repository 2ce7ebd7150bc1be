// The speech playground: audio (a recording or a file) goes to POST /transcribe as the body;
// text goes to POST /speak and the audio it answers is played.
import { busy, call, say, setupToken } from "/playground.js";

setupToken();
let recorded = null;
let recorder = null;
const state = document.getElementById("record-state");

document.getElementById("record").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  if (recorder) {
    recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = () => {
      recorded = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      button.textContent = "Record";
      state.textContent = `Recorded ${Math.round(recorded.size / 1024)} KiB.`;
    };
    recorder.start();
    button.textContent = "Stop";
    state.textContent = "Recording…";
  } catch (err) {
    say(`Cannot record here (${err.message}); upload a file instead.`);
  }
});

busy(document.getElementById("transcribe"), async () => {
  const file = document.getElementById("audio-file").files[0];
  const audio = file || recorded;
  if (!audio) throw new Error("Record something or choose an audio file first.");
  const response = await call("/transcribe", {
    method: "POST",
    headers: { "content-type": audio.type || "audio/mpeg" },
    body: audio,
  });
  const out = await response.json();
  document.getElementById("transcript").textContent = out.text;
});

let playing = null;
busy(document.getElementById("speak"), async () => {
  const text = document.getElementById("say").value.trim();
  const response = await call("/speak", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text }),
  });
  if (playing) URL.revokeObjectURL(playing);
  playing = URL.createObjectURL(await response.blob());
  const player = document.getElementById("player");
  player.src = playing;
  player.hidden = false;
  player.dataset.ready = "true";
});
