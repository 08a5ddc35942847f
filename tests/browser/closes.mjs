// Records how long a browser takes to see a close the room starts: a kick (started from
// the room's fetch, outside any socket event) and a close started inside a socket event
// (a binary frame, answered with 1003). Prints one JSON line with the close codes and the
// milliseconds from the trigger to the browser's `onclose`; the Rust side checks the codes
// and prints the times (it does not judge them: shared machines make times flaky).
//
//   ROOMGATE_ADMIN_TOKEN=... ROOMGATE_USER='["alice","pw"]' node tests/browser/closes.mjs <url>
import { launch } from "./chromium.mjs";

const base = process.argv[2];
const admin = process.env.ROOMGATE_ADMIN_TOKEN;
const [username, password] = JSON.parse(process.env.ROOMGATE_USER ?? "[]");
if (!base || !admin || !username) throw new Error("usage: see the top of closes.mjs");

const login = await fetch(`${base}/login`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ username, password }),
});
const { token, user } = await login.json();

const browser = await launch();
const summary = {};
try {
  const page = await browser.newPage();
  await page.goto(`${base}/healthz`);
  const ws = base.replace(/^http/, "ws");
  // Opens a socket in the page; resolves once it is welcomed.
  const open = (room) =>
    page.evaluate(
      ([url, token]) =>
        new Promise((resolve, reject) => {
          const s = new WebSocket(url, ["roomgate.v1", "bearer." + token]);
          window.__socket = s;
          s.onclose = (e) => (window.__closed = { code: e.code, at: Date.now() });
          s.onmessage = (e) => JSON.parse(e.data).type === "welcome" && resolve();
          s.onerror = () => reject(new Error("socket error"));
        }),
      [`${ws}/ws/${room}`, token],
    );
  const closed = () =>
    page.waitForFunction(() => window.__closed, null, { timeout: 30000 }).then((h) => h.jsonValue());

  await open("closes-kick");
  let at = Date.now();
  const kick = await fetch(`${base}/admin/rooms/closes-kick/kick`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ user_id: user.id }),
  });
  if (kick.status !== 200) throw new Error(`kick answered ${kick.status}`);
  let c = await closed();
  summary.kick = { code: c.code, onclose_ms: c.at - at };

  await page.evaluate(() => (window.__closed = null));
  await open("closes-in-event");
  at = await page.evaluate(() => {
    window.__socket.send(new Uint8Array([1, 2, 3]));
    return Date.now();
  });
  c = await closed();
  summary.in_event = { code: c.code, onclose_ms: c.at - at };
  summary.ok = true;
} catch (e) {
  summary.ok = false;
  summary.error = String(e?.stack ?? e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
if (!summary.ok) process.exitCode = 1;
