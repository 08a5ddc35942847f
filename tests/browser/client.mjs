// The client library in real Chromium against a roomgate runtime, for tests/client.rs:
// a page on the server's origin imports the library the server serves
// (/roomgate-client.js) and runs tests/client/scenario.mjs with the browser's own
// WebSocket and fetch. Prints the scenario's summary as one JSON line; exits 1 if a
// check failed.
//
//   ROOMGATE_USERS='[["alice","pw","Alice"],...]' ROOMGATE_TTL=16 node tests/browser/client.mjs <url>
import { readFileSync } from "node:fs";
import { launch } from "./chromium.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: client.mjs <server url>");
const users = JSON.parse(process.env.ROOMGATE_USERS ?? "[]");
const ttlSeconds = Number(process.env.ROOMGATE_TTL);
const scenarioSource = readFileSync(new URL("../client/scenario.mjs", import.meta.url), "utf8");
// Served to the page on the server's own origin, so the page's script-src 'self' admits it.
const SCENARIO_PATH = "/__client-test/scenario.mjs";

const browser = await launch();
let summary;
try {
  const page = await browser.newPage();
  const console_errors = [];
  page.on("console", (m) => m.type() === "error" && console_errors.push(m.text()));
  await page.route(`${base}${SCENARIO_PATH}`, (route) =>
    route.fulfill({ status: 200, contentType: "text/javascript", body: scenarioSource }),
  );
  await page.goto(`${base}/`);
  summary = await page.evaluate(
    async ([path, base, users, ttlSeconds]) => {
      const { RoomClient } = await import("/roomgate-client.js");
      const { scenario } = await import(path);
      return scenario({ RoomClient, WebSocket, base, users, tag: "chromium", ttlSeconds });
    },
    [SCENARIO_PATH, base, users, ttlSeconds],
  );
  summary.console_errors = console_errors;
  summary.user_agent = await page.evaluate(() => navigator.userAgent);
} catch (e) {
  summary = { ok: false, error: String(e?.stack ?? e) };
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
