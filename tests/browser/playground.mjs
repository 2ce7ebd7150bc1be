// Drives a playground page in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core) for tests/browser: `node playground.mjs <scenario> <url> <token> [png]`.
// Prints one JSON object: what the scenario saw, plus every console error of the page.
// A fresh profile directory per run, removed at the end; the browser always closes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [scenario, base, token, shot] = process.argv.slice(2);
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

async function useToken(page, value) {
  await page.getByLabel("Bearer token").fill(value);
  await page.getByRole("button", { name: "Use token" }).click();
  await page.getByText("Token saved for this tab.").waitFor();
}

const SCENARIOS = {
  async load(page) {
    const unlabelled = await page.$$eval("input, textarea, select", (els) =>
      els.filter((el) => el.labels.length === 0).map((el) => el.id),
    );
    const embedded = (await page.content()).includes(token);
    return { title: await page.title(), h1: await page.locator("h1").innerText(), unlabelled, embedded };
  },

  async chat(page) {
    await useToken(page, token);
    // Every change of the answer's text, seen as it happens: a streamed answer grows.
    await page.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => {
        const answer = document.querySelector("#log li.assistant span");
        if (answer && answer.textContent !== window.seen.at(-1)) window.seen.push(answer.textContent);
      }).observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
    });
    await page.getByLabel("Message").fill("What does AI Gateway caching do?");
    await page.getByRole("button", { name: "Send" }).click();
    await page.locator("#log li.assistant[data-done=true]").waitFor({ timeout: 30000 });
    const answer = await page.locator("#log li.assistant span").innerText();
    return { answer, updates: await page.evaluate(() => window.seen.length) };
  },

  async rag(page) {
    await useToken(page, token);
    const text = "The zebrafish playground note: cfai stores uploaded documents in Vectorize.";
    await page.getByLabel("or paste its text").fill(text);
    await page.getByRole("button", { name: "Upload" }).click();
    await page.locator("#upload-state", { hasText: "Stored" }).waitFor({ timeout: 30000 });
    await page.getByLabel("Question").fill("Where does the zebrafish note say documents are stored?");
    // Vectorize applies writes asynchronously: ask until the new chunk matches (bounded).
    for (let attempt = 0; attempt < 40; attempt++) {
      await page.getByRole("button", { name: "Ask" }).click();
      await page.getByRole("button", { name: "Ask" }).isEnabled();
      await page.waitForFunction(() => !document.querySelector("#ask button").disabled);
      const rows = await page.$$eval("#matches tbody tr", (trs) =>
        trs.map((tr) => [...tr.cells].map((c) => c.textContent)),
      );
      if (rows.some((r) => r[2].includes("zebrafish"))) {
        return { rows, answer: await page.locator("#answer").innerText(), visible: await page.locator("#matches").isVisible() };
      }
      await page.waitForTimeout(250);
    }
    return { rows: [], answer: await page.locator("#answer").innerText() };
  },

  async image(page) {
    await useToken(page, token);
    await page.getByLabel("Prompt").fill("a lighthouse at dusk");
    await page.getByLabel("Size").selectOption("768x768");
    await page.getByLabel("Steps").fill("4");
    await page.getByRole("button", { name: "Draw" }).click();
    await page.locator("#result").waitFor({ state: "visible", timeout: 60000 });
    const size = await page.$eval("#picture", (img) => [img.naturalWidth, img.naturalHeight]);
    return { size, caption: await page.locator("#caption").innerText(), alt: await page.getAttribute("#picture", "alt") };
  },

  async speech(page) {
    await useToken(page, token);
    await page.getByLabel("Text to speak").fill("Hello from the playground.");
    await page.getByRole("button", { name: "Speak" }).click();
    await page.locator("#player[data-ready=true]").waitFor({ timeout: 30000 });
    const played = await page.$eval("#player", (a) => a.play().then(() => a.src.startsWith("blob:"), () => a.src.startsWith("blob:")));
    return { played, visible: await page.locator("#player").isVisible() };
  },

  async wrong_token(page) {
    await useToken(page, "not-the-token");
    const send = page.getByLabel("Message");
    if (await send.count()) {
      await send.fill("hello");
      await page.getByRole("button", { name: "Send" }).click();
    } else {
      await page.getByLabel("Prompt").fill("a cat");
      await page.getByRole("button", { name: "Draw" }).click();
    }
    const alert = page.getByRole("alert");
    await alert.filter({ hasText: "401" }).waitFor({ timeout: 30000 });
    return { alert: await alert.innerText() };
  },
};

const profile = mkdtempSync(join(tmpdir(), "cfai-chromium-"));
let context;
const errors = [];
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CFAI_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: 420, height: 900 },
    timeout: 60000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  const response = await page.goto(`${base}/`, { waitUntil: "load" });
  const seen = await SCENARIOS[scenario](page);
  if (shot) await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ status: response.status(), errors, ...seen }));
} catch (err) {
  console.log(JSON.stringify({ failed: String(err), errors }));
  process.exitCode = 1;
} finally {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
}
