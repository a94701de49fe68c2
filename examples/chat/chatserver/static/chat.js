"use strict";
// The chat page: a token from POST /api/token, messages sent as POSTs with
// the token, the room received as Server-Sent Events. Plain JavaScript, no
// build step.

// chat is the room the page is in, or null:
//   name, room   who and where, as the server spelled them
//   token        the current token; renewed when it expires
//   last         the id ("page:seq") of the last message received, from
//                which a new stream resumes
//   es           the open EventSource, or null while renewing
//   failures     renewals in a row that did not end in a working stream
let chat = null;

const $ = (id) => document.getElementById(id);

function setStatus(text, kind) {
  const s = $("status");
  s.textContent = text;
  s.className = kind || "idle";
}

function clock(t) {
  return new Date(t).toLocaleTimeString();
}

// addLine appends a message or a notice. Text goes in with textContent,
// never as HTML.
function addLine(className, from, text, id) {
  const list = $("messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
  const li = document.createElement("li");
  li.className = className;
  if (from !== null) {
    const who = document.createElement("span");
    who.className = "from";
    who.textContent = from;
    li.append(who);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(body);
  if (id) li.dataset.id = id;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function notice(text, warn) {
  addLine(warn ? "notice warn" : "notice", null, text);
}

// api calls the server and returns its JSON, or throws an Error with the
// server's message, the HTTP status and Retry-After.
async function api(path, init) {
  const res = await fetch(path, init);
  if (res.ok) return res.status === 204 ? null : res.json();
  let message = `${res.status} ${res.statusText}`;
  try {
    message = (await res.json()).error || message;
  } catch {
    // not JSON: keep the status line
  }
  const err = new Error(message);
  err.status = res.status;
  err.retryAfter = Number(res.headers.get("Retry-After")) || 0;
  throw err;
}

// token gets a new token for c; callers at the same time share one request.
function token(c) {
  if (!c.pending) {
    c.pending = api("/api/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: c.name, room: c.room }),
    })
      .then((t) => {
        c.token = t.token;
        c.name = t.name;
        c.room = t.room;
      })
      .finally(() => {
        c.pending = null;
      });
  }
  return c.pending;
}

// connect opens the room's event stream with c's token, resuming after the
// last message received if there was one. EventSource reconnects by itself
// after a dropped connection, sending the last id as Last-Event-ID; a new
// EventSource (after a renewal) passes it as ?last=.
function connect(c) {
  if (chat !== c) return; // left meanwhile
  let url = `/api/rooms/${encodeURIComponent(c.room)}/events?token=${encodeURIComponent(c.token)}`;
  if (c.last) url += `&last=${encodeURIComponent(c.last)}`;
  const es = new EventSource(url);
  c.es = es;

  es.addEventListener("ready", (e) => {
    const d = JSON.parse(e.data);
    c.failures = 0;
    if (c.streams++ > 0) {
      notice(d.resumed ? "Reconnected; resuming after the last message received." : "Reconnected.");
    } else {
      notice(`You joined ${d.room} as ${d.name}.`);
    }
    setStatus(`Connected as ${d.name} · token valid until ${clock(d.expires)}`, "ok");
  });
  es.addEventListener("message", (e) => {
    c.last = e.lastEventId;
    const m = JSON.parse(e.data);
    addLine(m.from === c.name ? "msg mine" : "msg", m.from, m.text, e.lastEventId);
  });
  es.addEventListener("missed", (e) => {
    const d = JSON.parse(e.data);
    if (d.restarted) {
      notice("The room restarted while you were away: what was said meanwhile may be lost.", true);
    } else {
      notice(`${d.count} message${d.count === 1 ? " was" : "s were"} missed.`, true);
    }
  });
  es.addEventListener("expired", () => {
    notice("Token expired; fetching a new one.");
    renew(c, es);
  });
  es.addEventListener("closing", () => {
    setStatus("The server is shutting down; reconnecting…", "warn");
  });
  es.onerror = () => {
    if (c.es !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The server refused the stream: the token expired while the page was
      // away, or the server restarted and no longer knows it.
      renew(c, es);
    } else {
      setStatus("Connection lost; reconnecting…", "warn");
    }
  };
}

// renew replaces the stream es with one under a new token.
function renew(c, es) {
  es.close();
  if (chat !== c || c.es !== es) return;
  c.es = null;
  reopen(c, "");
}

// reopen gets a new token and connects, at once the first time and then
// with a growing delay, until a stream works (its "ready" resets failures).
function reopen(c, why) {
  const delay = c.failures ? Math.min(1000 * 2 ** (c.failures - 1), 15000) : 0;
  c.failures++;
  setStatus(delay ? `${why || "Disconnected"}; trying again in ${delay / 1000} s…` : "Renewing token…", "warn");
  c.timer = setTimeout(async () => {
    if (chat !== c) return;
    try {
      await token(c);
    } catch (err) {
      reopen(c, `Cannot get a token (${err.message})`);
      return;
    }
    connect(c);
  }, delay);
}

// post sends a message; a 401 (the token expired) gets a new token and one
// more try.
async function post(c, text, again) {
  try {
    await api(`/api/rooms/${encodeURIComponent(c.room)}/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${c.token}` },
      body: JSON.stringify({ text }),
    });
  } catch (err) {
    if (err.status !== 401 || again) throw err;
    await token(c);
    await post(c, text, true);
  }
}

$("join").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("join-error").textContent = "";
  const c = {
    name: $("name").value.trim(),
    room: $("room").value.trim(),
    token: "",
    last: "",
    es: null,
    pending: null,
    failures: 0,
    streams: 0,
    timer: 0,
  };
  try {
    await token(c);
  } catch (err) {
    $("join-error").textContent = err.message;
    return;
  }
  chat = c;
  $("join").hidden = true;
  $("chat").hidden = false;
  $("room-title").textContent = `#${c.room}`;
  $("messages").replaceChildren();
  $("send-error").textContent = "";
  setStatus("Connecting…", "warn");
  connect(c);
  $("text").focus();
});

$("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const c = chat;
  const input = $("text");
  const text = input.value;
  if (!c || !text.trim()) return;
  $("send-error").textContent = "";
  try {
    await post(c, text, false);
    if (input.value === text) input.value = "";
  } catch (err) {
    $("send-error").textContent =
      err.status === 429
        ? `Slow down: the room takes only a few messages a second. Try again in ${err.retryAfter || 1} s.`
        : `Not sent: ${err.message}`;
  }
});

$("leave").addEventListener("click", () => {
  const c = chat;
  chat = null;
  if (c) {
    clearTimeout(c.timer);
    if (c.es) c.es.close();
  }
  $("chat").hidden = true;
  $("join").hidden = false;
  setStatus("Not connected", "idle");
});
