// roomgate's browser client: log in, join a room, chat. No build step: the connection is
// roomgate-client (served at /roomgate-client.js), the page only renders what it reports.
//
// The access token stays in memory and never goes into a URL: each connection trades it
// for a single-use ticket (POST /ws-ticket). The library reconnects with jittered
// exponential backoff and resumes with `since=<last seq>`, and delivers each message once,
// in seq order, so the page appends what it is given. All user-provided text is rendered
// with textContent, never as HTML.
import { RoomClient } from "/roomgate-client.js";

const $ = (id) => document.getElementById(id);
const session = {
  token: null,
  room: null, // the RoomClient of the room the user chose; null when not in one
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

// --- rooms -----------------------------------------------------------------------------

$("room-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  leaveRoom();
  joinRoom(ev.target.room.value);
});

function leaveRoom() {
  const room = session.room;
  session.room = null;
  room?.close();
  $("messages").replaceChildren();
  renderMembers(new Map());
  setSendable(false);
}

function joinRoom(name) {
  const room = new RoomClient({
    url: location.origin,
    room: name,
    token: () => session.token,
    transport: "ticket",
    ticketUrl: "/ws-ticket",
  });
  session.room = room;
  setStatus(`connecting to ${name}…`);
  // Every handler checks that this is still the user's room: a left room's client is
  // closed, but its last events may still be on their way.
  const on = (event, handler) => room.on(event, (value) => { if (session.room === room) handler(value); });

  on("state", (state) => {
    setSendable(state === "open");
    if (state === "connecting") setStatus(`connecting to ${name}…`);
  });
  on("welcome", (w) => {
    $("status").replaceChildren(`connected to ${w.room} as `, el("bdi", "", w.user.name));
  });
  on("members", renderMembers);
  on("message", showMessage);
  on("gap", (gap) => { // on resume: these were missed and the room no longer keeps them
    append(el("li", "gap", `messages ${gap.from}–${gap.to} are no longer available`), gap.from - 0.5);
  });
  on("expiring", () => setStatus("your session expires soon: log in again to stay connected"));
  on("error", (e) => setStatus(`server: ${e.message || e.code}`));
  on("close", ({ willRetry, delayMs, error }) => {
    if (willRetry) {
      setStatus(`${error.message}: reconnecting in ${(delayMs / 1000).toFixed(1)} s`);
      return;
    }
    switch (error.code) {
      case "invalid_token":
      case "token_expired":
        return signOut("session expired: log in again");
      case "revoked":
        return signOut("access revoked");
      case "kicked":
        return setStatus(`removed from ${name}: join again to return`);
      case "room_forbidden":
      case "forbidden":
        return setStatus(error.message || `no access to ${name}`);
      default:
        return setStatus(`disconnected from ${name}: ${error.message}`);
    }
  });
}

// --- rendering -------------------------------------------------------------------------

function renderMembers(members) {
  const me = session.room?.me;
  $("members").replaceChildren(
    ...[...members.values()].map((m) => {
      const mine = me && m.id === me.id;
      // <bdi>: a name in another script (or with stray direction marks) cannot reorder
      // the text around it.
      const li = el("li", mine ? "mine" : "");
      li.append(el("bdi", "", m.name));
      if (mine) li.append(" (you)");
      return li;
    }),
  );
}

function showMessage(m) {
  const me = session.room?.me;
  const mine = me && m.from.id === me.id;
  const li = el("li", mine ? "message mine" : "message");
  const time = el("time", "", new Date(m.ts).toLocaleTimeString());
  time.dateTime = new Date(m.ts).toISOString();
  const data = m.data;
  const text = data && typeof data.text === "string" ? data.text : JSON.stringify(data);
  li.append(time, el("bdi", "from", m.from.name), el("span", "text", text));
  append(li, m.seq);
}

function append(li, seq) {
  li.dataset.seq = String(seq);
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  list.append(li);
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
  const room = session.room;
  if (!room || room.state !== "open" || !input.value) return;
  room.publish({ text: input.value }).catch((e) => {
    // A lost connection's publish shows up on resume if the room had it; the status
    // already says the connection is being restored.
    if (session.room === room && e.code !== "connection_lost") setStatus(`not sent: ${e.message || e.code}`);
  });
  input.value = "";
  input.focus();
});
