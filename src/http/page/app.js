// roomgate's browser client: log in, join a room, chat. No dependencies, no build step.
//
// The access token stays in memory and never goes into a URL: each connection gets its own
// single-use ticket from POST /ws-ticket. On a drop the client reconnects with jittered
// exponential backoff and asks for `since=<last seq it saw>`, so a server that keeps
// history replays what was missed; messages are shown once each, by seq, whatever
// arrives twice. All user-provided text is rendered with textContent, never as HTML.
"use strict";

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;

const $ = (id) => document.getElementById(id);
const session = {
  token: null,
  room: null,   // the room the user chose; null when not in one
  ws: null,     // the live socket, if any
  me: null,     // {id, name} from the welcome
  lastSeq: 0,   // highest seq shown in this room
  shown: new Set(),
  attempt: 0,   // failed connection attempts since the last welcome
  timer: null,
};

function setStatus(text) { $("status").textContent = text; }

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- login -----------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  $("login-error").textContent = "";
  try {
    const res = await fetch("/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || typeof body.token !== "string") {
      $("login-error").textContent = body.message || `login failed (${res.status})`;
      return;
    }
    session.token = body.token;
    form.password.value = "";
    form.hidden = true;
    $("chat").hidden = false;
    $("logout").hidden = false;
    setStatus(`signed in as ${form.username.value}`);
    $("room-form").room.focus();
  } catch (e) {
    $("login-error").textContent = `login failed: ${e.message}`;
  }
});

$("logout").addEventListener("click", () => signOut("signed out"));

function signOut(why) {
  leaveRoom();
  session.token = null;
  $("chat").hidden = true;
  $("logout").hidden = true;
  $("login-form").hidden = false;
  setStatus(why);
}

// --- rooms and connections -----------------------------------------------------------------

$("room-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  leaveRoom();
  session.room = ev.target.room.value;
  connect();
});

function leaveRoom() {
  session.room = null;
  clearTimeout(session.timer);
  if (session.ws) session.ws.close(1000, "left");
  session.ws = null;
  session.me = null;
  session.lastSeq = 0;
  session.shown.clear();
  session.attempt = 0;
  $("messages").replaceChildren();
  renderMembers([]);
  setSendable(false);
}

async function connect() {
  const room = session.room;
  clearTimeout(session.timer);
  setStatus(`connecting to ${room}…`);
  let ticket;
  try {
    const res = await fetch("/ws-ticket", {
      method: "POST",
      headers: { authorization: `Bearer ${session.token}`, "content-type": "application/json" },
      body: JSON.stringify({ room }),
    });
    if (res.status === 401) return signOut("session expired: log in again");
    const body = await res.json().catch(() => ({}));
    if (res.status === 403) return setStatus(body.message || `no access to ${room}`);
    if (!res.ok) throw new Error(body.message || `ticket: ${res.status}`);
    ticket = body.ticket;
  } catch (e) {
    return retryLater(e.message);
  }
  if (session.room !== room) return; // the user moved on while we waited

  const query = new URLSearchParams({ ticket });
  if (session.lastSeq > 0) query.set("since", String(session.lastSeq));
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(
    `${scheme}//${location.host}/ws/${encodeURIComponent(room)}?${query}`,
    ["roomgate.v1"],
  );
  session.ws = ws;
  ws.onmessage = (ev) => {
    if (session.ws !== ws) return;
    let frame;
    try { frame = JSON.parse(ev.data); } catch { return; }
    onFrame(frame);
  };
  ws.onclose = (ev) => {
    if (session.ws !== ws) return; // a socket we already replaced or left
    session.ws = null;
    setSendable(false);
    renderMembers([]);
    if (ev.code === 4001) return signOut("session expired: log in again");
    if (ev.code === 4003 && ev.reason === "revoked") return signOut("access revoked");
    retryLater(ev.reason || `connection closed (${ev.code})`);
  };
}

function retryLater(why) {
  if (!session.room) return;
  // Full jitter over an exponentially growing window, so a server restart does not
  // bring every client back in the same instant.
  const span = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** session.attempt);
  const delay = Math.round(span / 2 + (Math.random() * span) / 2);
  session.attempt += 1;
  setStatus(`${why}: reconnecting in ${(delay / 1000).toFixed(1)} s`);
  clearTimeout(session.timer);
  session.timer = setTimeout(connect, delay);
}

// --- frames ----------------------------------------------------------------------------

let members = [];

function onFrame(frame) {
  switch (frame.type) {
    case "welcome":
      session.me = frame.user;
      session.attempt = 0;
      renderMembers(frame.members || []);
      setSendable(true);
      $("status").replaceChildren(`connected to ${frame.room} as `, el("bdi", "", frame.user.name));
      break;
    case "message":
      showMessage(frame);
      break;
    case "gap": // on resume: these were missed and the room no longer keeps them
      if (Number.isSafeInteger(frame.from) && Number.isSafeInteger(frame.to)) {
        session.lastSeq = Math.max(session.lastSeq, frame.to);
        const note = el("li", "gap", `messages ${frame.from}–${frame.to} are no longer available`);
        place(note, frame.from - 0.5);
      }
      break;
    case "join":
      if (!members.some((m) => m.id === frame.user.id)) renderMembers([...members, frame.user]);
      break;
    case "leave":
      renderMembers(members.filter((m) => m.id !== frame.user.id));
      break;
    case "expiring":
      setStatus("your session expires soon: log in again to stay connected");
      break;
    case "error":
      setStatus(`server: ${frame.message || frame.code}`);
      break;
  }
}

function renderMembers(list) {
  members = list;
  $("members").replaceChildren(
    ...list.map((m) => {
      const mine = session.me && m.id === session.me.id;
      // <bdi>: a name in another script (or with stray direction marks) cannot reorder
      // the text around it.
      const li = el("li", mine ? "mine" : "");
      li.append(el("bdi", "", m.name));
      if (mine) li.append(" (you)");
      return li;
    }),
  );
}

function showMessage(frame) {
  const seq = frame.seq;
  if (!Number.isSafeInteger(seq) || session.shown.has(seq)) return; // replayed twice
  session.shown.add(seq);
  session.lastSeq = Math.max(session.lastSeq, seq);

  const mine = session.me && frame.from.id === session.me.id;
  const li = el("li", mine ? "message mine" : "message");
  const time = el("time", "", new Date(frame.ts).toLocaleTimeString());
  time.dateTime = new Date(frame.ts).toISOString();
  const data = frame.data;
  const text = data && typeof data.text === "string" ? data.text : JSON.stringify(data);
  li.append(time, el("bdi", "from", frame.from.name), el("span", "text", text));

  place(li, seq);
}

// Keeps the list in seq order even if a replayed message arrives after a newer live one.
function place(li, seq) {
  li.dataset.seq = String(seq);
  const list = $("messages");
  const later = [...list.children].find((n) => Number(n.dataset.seq) > seq);
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.insertBefore(li, later || null);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

// --- sending ---------------------------------------------------------------------------

function setSendable(on) {
  const form = $("send-form");
  form.text.disabled = !on;
  form.querySelector("button").disabled = !on;
}

$("send-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = ev.target.text;
  if (!session.ws || session.ws.readyState !== WebSocket.OPEN || !input.value) return;
  session.ws.send(JSON.stringify({ type: "publish", data: { text: input.value } }));
  input.value = "";
  input.focus();
});
