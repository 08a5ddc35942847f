// A browser app on another origin, in real Chromium. Serves one small page from two
// loopback origins of its own: the "listed" one (in the runtime's ALLOWED_ORIGINS) and an
// "unlisted" one. On each, the page logs in to roomgate with fetch, trades the token for
// a ticket, opens a socket with it and publishes one message, reporting each step (and
// reads the public JWKS first, which any origin may). Prints
// one JSON line: what each origin's page achieved, and what the browser said when it was
// stopped.
//
//   ROOMGATE_USER='["alice","pw"]' node tests/browser/cors.mjs <roomgate url> <listed port> <unlisted port>
import { createServer } from "node:http";
import { launch } from "./chromium.mjs";

const [base, listedPort, unlistedPort] = process.argv.slice(2);
const [username, password] = JSON.parse(process.env.ROOMGATE_USER ?? "[]");
if (!base || !listedPort || !unlistedPort || !username) {
  throw new Error("usage: see the top of cors.mjs");
}

// The page: plain script, no framework. `window.__run()` resolves with the steps it
// completed and the first error.
const page = `<!doctype html><meta charset="utf-8"><title>cors</title><script>
window.__run = async (base, username, password, room) => {
  const steps = [];
  try {
    const jwks = await fetch(base + "/.well-known/jwks.json");
    steps.push("jwks " + jwks.status);
    const login = await fetch(base + "/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    steps.push("login " + login.status);
    const { token } = await login.json();
    const ticket = await fetch(base + "/ws-ticket", {
      method: "POST",
      headers: { authorization: "Bearer " + token, "content-type": "application/json" },
      body: JSON.stringify({ room }),
    });
    steps.push("ticket " + ticket.status);
    const { ticket: t } = await ticket.json();
    const echoed = await new Promise((resolve, reject) => {
      const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws/" + room + "?ticket=" + t, ["roomgate.v1"]);
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data);
        if (f.type === "welcome") ws.send(JSON.stringify({ type: "publish", data: { text: "from " + location.origin } }));
        if (f.type === "message") { ws.close(); resolve(f.data.text); }
      };
      ws.onerror = () => reject(new Error("socket error"));
    });
    steps.push("chat " + echoed);
    return { steps, error: null };
  } catch (e) {
    return { steps, error: String(e) };
  }
};
</script>`;

const servers = [listedPort, unlistedPort].map((port) => {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  });
  return new Promise((resolve) => server.listen(Number(port), "127.0.0.1", () => resolve(server)));
});
const started = await Promise.all(servers);

const browser = await launch();
const summary = { ok: false };
try {
  for (const [name, port] of [["listed", listedPort], ["unlisted", unlistedPort]]) {
    const tab = await browser.newPage();
    const console_errors = [];
    tab.on("console", (m) => m.type() === "error" && console_errors.push(m.text()));
    await tab.goto(`http://127.0.0.1:${port}/`);
    const result = await tab.evaluate(
      ([b, u, p, r]) => window.__run(b, u, p, r),
      [base, username, password, `cors-${name}`],
    );
    summary[name] = { ...result, console_errors };
    await tab.close();
  }
  summary.ok = true;
} finally {
  await browser.close();
  for (const s of started) s.close();
}
console.log(JSON.stringify(summary));
