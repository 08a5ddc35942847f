// Drives roomgate's browser client (GET /) in headless Chromium, for tests/browser.rs.
//
//   ROOMGATE_USERS='[["alice","pw","Alice"],["bob","pw","Bob"]]' node tests/browser/chat.mjs <url>
//
// Two users log in through the page's form in separate browser contexts, join one room,
// see each other in the member list and chat both ways. Then Bob's socket drops and his
// browser goes offline while Alice sends three messages; back online, Bob's page must
// reconnect by itself (asking to resume after the last seq it saw) and show every
// message exactly once, in seq order. Prints one JSON summary line on stdout; exits 1 on
// the first failed check. The screenshot goes to tests/artifacts/browser-chat.png.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./chromium.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: chat.mjs <server url>");
const users = JSON.parse(process.env.ROOMGATE_USERS ?? "[]");
const [alice, bob] = users;
if (!alice || !bob) throw new Error("ROOMGATE_USERS needs two [username, password, name]");
const root = new URL("../..", import.meta.url).pathname;
const artifacts = join(root, "tests/artifacts");
const screenshot = join(artifacts, "browser-chat.png");
const room = `browser-${Date.now()}`;
const WAIT = { timeout: 15000 };
const HTMLISH = "<img src=x onerror=window.__pwned=1> hi alice, bob here";

const browser = await launch();

const summary = { room };
try {
  const a = await open(alice);
  const b = await open(bob);

  // Both see both, by display name.
  for (const p of [a, b]) {
    await p.page.waitForFunction(
      (names) => names.every((n) => [...document.querySelectorAll("#members li")]
        .some((li) => li.textContent.startsWith(n))),
      [alice[2], bob[2]],
      WAIT,
    );
  }
  summary.members = { [alice[0]]: await members(a.page), [bob[0]]: await members(b.page) };

  // Both ways.
  await send(a.page, "hello from alice");
  await waitForText(b.page, "hello from alice");
  // Bob's text is HTML-shaped: it must show as text, create no element and run nothing.
  await send(b.page, HTMLISH);
  await waitForText(a.page, HTMLISH);
  // Bob's own echo too: the last seq his page shows must be final before he drops.
  await waitForText(b.page, HTMLISH);
  for (const p of [a, b]) {
    check(await p.page.evaluate(() => !document.querySelector("#messages img") && !window.__pwned),
      "message text is never parsed as HTML");
  }
  // Names are isolated, so a name in another script (or with direction marks) cannot
  // reorder the text around it.
  for (const p of [a, b]) {
    const isolated = await p.page.evaluate(() => ({
      senders: [...document.querySelectorAll("#messages .message .from")].every((n) => n.localName === "bdi"),
      members: [...document.querySelectorAll("#members li")].every((li) => li.querySelector("bdi")),
      status: !!document.querySelector("#status bdi"),
    }));
    check(isolated.senders && isolated.members && isolated.status, `names are in <bdi>: ${JSON.stringify(isolated)}`);
  }

  // Bob drops: his socket closes and the network goes away, so reconnecting fails for a
  // while (backoff) and Alice's next three messages reach him only through resume.
  const seqBeforeDrop = (await shown(b.page)).at(-1).seq;
  await b.context.setOffline(true);
  await b.page.evaluate(() => window.__sockets.at(-1).close(3000, "test: connection dropped"));
  await b.page.waitForFunction(() => /reconnecting/.test(document.getElementById("status").textContent), null, WAIT);
  const missed = ["while you were away 1", "while you were away 2", "while you were away 3"];
  for (const text of missed) await send(a.page, text);
  for (const text of missed) await waitForText(a.page, text);
  // Bob really was away: no socket of his page is open.
  const away = await b.page.evaluate(() => ({
    sockets: window.__sockets.length,
    open: window.__sockets.filter((s) => s.readyState === WebSocket.OPEN).length,
  }));
  check(away.open === 0, `Bob has no open socket while offline: ${JSON.stringify(away)}`);
  await b.context.setOffline(false);
  await b.page.waitForFunction(
    (n) => window.__sockets.length > n && window.__sockets.at(-1).readyState === WebSocket.OPEN,
    away.sockets,
    WAIT,
  );
  await b.page.waitForFunction(() => /^connected/.test(document.getElementById("status").textContent), null, WAIT);

  // One more live message after the reconnect, so "caught up" has an end marker.
  await send(a.page, "welcome back, bob");
  await waitForText(b.page, "welcome back, bob");

  // A message delivered twice (a resume overlapping what was already shown) shows once.
  await b.page.evaluate(() => {
    const again = { type: "message", seq: 1, from: { id: "x", name: "Alice" }, data: { text: "hello from alice" }, ts: 0 };
    window.__sockets.at(-1).dispatchEvent(new MessageEvent("message", { data: JSON.stringify(again) }));
  });

  const urls = await b.page.evaluate(() => window.__sockets.map((s) => s.url));
  const resumeUrl = new URL(urls.at(-1));
  summary.resume = {
    since: resumeUrl.searchParams.get("since"),
    last_seq_before_drop: seqBeforeDrop,
    server_supports_resume: b.welcomes.at(-1)?.last_seq !== undefined,
  };
  check(resumeUrl.searchParams.get("since") === String(seqBeforeDrop),
    `reconnect asked for since=${seqBeforeDrop}: ${resumeUrl.search}`);
  for (const p of [a, b]) {
    for (const u of await p.page.evaluate(() => window.__sockets.map((s) => s.url))) {
      const q = new URL(u).searchParams;
      check(!q.has("token") && !/eyJ/.test(u), `no token in a WebSocket URL: ${u}`);
      check(q.has("ticket"), `every socket uses a ticket: ${u}`);
    }
    check(!/eyJ/.test(p.page.url()), "no token in the page URL");
  }

  const expected = ["hello from alice", HTMLISH, ...missed, "welcome back, bob"];
  const seen = await shown(b.page);
  summary.bob_sees = seen;
  summary.alice_sees = await shown(a.page);
  const seqs = seen.map((m) => m.seq);
  check(new Set(seqs).size === seqs.length, `each message once on Bob's page: ${seqs}`);
  check(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `Bob's page in seq order: ${seqs}`);
  check(summary.resume.server_supports_resume, "the resumed welcome carries last_seq");
  check(JSON.stringify(seen.map((m) => m.text)) === JSON.stringify(expected),
    `Bob's page misses nothing: ${JSON.stringify(seen.map((m) => m.text))}`);
  summary.missed_on_bob = expected.filter((t) => !seen.some((m) => m.text === t));
  check(JSON.stringify(summary.alice_sees.map((m) => m.text)) === JSON.stringify(expected),
    `Alice's page shows every message: ${JSON.stringify(summary.alice_sees)}`);

  mkdirSync(artifacts, { recursive: true });
  await b.page.screenshot({ path: screenshot });
  summary.screenshot = screenshot;
  summary.ok = true;
  console.log(JSON.stringify(summary));
} catch (e) {
  summary.ok = false;
  summary.error = String(e?.stack ?? e);
  console.log(JSON.stringify(summary));
  process.exitCode = 1;
} finally {
  await browser.close();
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

// A logged-in page in its own context (own cookies, own network switch), in the room.
async function open([username, password]) {
  const context = await browser.newContext({ viewport: { width: 900, height: 560 } });
  // Keep every socket the page opens, to close one and read the URLs it used.
  await context.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
      }
    };
  });
  const page = await context.newPage();
  const welcomes = [];
  page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => {
    try {
      const frame = JSON.parse(payload);
      for (const f of [].concat(frame)) if (f.type === "welcome") welcomes.push(f);
    } catch {}
  }));
  page.on("pageerror", (e) => console.error(`[${username}] page error: ${e}`));
  const res = await page.goto(base);
  check(res.status() === 200, `GET / is 200: ${res.status()}`);
  await page.fill("#login-form [name=username]", username);
  await page.fill("#login-form [name=password]", password);
  await page.click("#login-form button");
  await page.waitForSelector("#chat", { state: "visible", ...WAIT });
  await page.fill("#room-form [name=room]", room);
  await page.click("#room-form button");
  await page.waitForSelector("#send-form input:enabled", WAIT);
  return { context, page, welcomes };
}

async function send(page, text) {
  await page.waitForSelector("#send-form input:enabled", WAIT);
  await page.fill("#send-form [name=text]", text);
  await page.click("#send-form button");
}

async function waitForText(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .message .text")].some((n) => n.textContent === t),
    text,
    WAIT,
  );
}

async function shown(page) {
  return page.$$eval("#messages li.message", (lis) => lis.map((li) => ({
    seq: Number(li.dataset.seq),
    from: li.querySelector(".from").textContent,
    text: li.querySelector(".text").textContent,
  })));
}

async function members(page) {
  return page.$$eval("#members li", (lis) => lis.map((li) => li.textContent));
}
