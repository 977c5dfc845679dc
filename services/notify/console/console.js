// careroute agency console: offers arrive live over SSE; answers and status reports go to notify's API.
"use strict";

const LABELS = {
  offered: "Offered", accepted: "Accepted", declined: "Declined", en_route: "En route",
  on_scene: "On scene", cleared: "Cleared", withdrawn: "Withdrawn", expired: "Expired",
};
const DECLINE_REASONS = [
  ["no_capacity", "No capacity"], ["out_of_area", "Out of area"], ["safety_concern", "Safety concern"],
  ["skill_mismatch", "Skill mismatch"], ["other", "Other (say why)"],
];
const ACTIVE = ["accepted", "en_route", "on_scene"];
const CHANGES = {
  location: "where", callback_number: "callback number", language: "language", cautions: "cautions",
};
// What the agency owes next once it accepted, as the timer watching the assignment names it.
const OWED = { en_route: "En route report", on_scene: "On scene report", check_in: "Safety check-in" };
const FACT_OF_CHANGE = {
  location: ".where", callback_number: ".callback", language: ".language", cautions: ".cautions",
};

const state = {
  token: null, items: new Map(), cards: new Map(), lastEventId: null, abort: null, dispositions: [],
};
const $ = (id) => document.getElementById(id);

function describe(body, status) {
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  if (body && typeof body.detail === "string") return body.detail;
  return `The server answered ${status}.`;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" },
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const error = new Error(describe(body, response.status));
    error.status = response.status;
    throw error;
  }
  return body;
}

function newer(a, b) {
  return !b || Date.parse(a.updated_at) >= Date.parse(b.updated_at);
}

// What the 911 center changed on each card since the team last marked it seen (kept across reloads).
function unseen() {
  try { return JSON.parse(sessionStorage.getItem("careroute-unseen") || "{}"); } catch (_) { return {}; }
}

function markUnseen(assignmentId, changed) {
  const all = unseen();
  all[assignmentId] = [...new Set([...(all[assignmentId] || []), ...changed])];
  sessionStorage.setItem("careroute-unseen", JSON.stringify(all));
}

function markSeen(assignmentId) {
  const all = unseen();
  delete all[assignmentId];
  sessionStorage.setItem("careroute-unseen", JSON.stringify(all));
  render();
}

function apply(view, type) {
  const known = state.items.get(view.assignment_id);
  if (!newer(view, known)) return;
  state.items.set(view.assignment_id, { ...known, ...view });
  if (type === "offered" && !known && view.status === "offered") {
    $("announce").textContent = `New offer for team ${view.team_id}: ${view.details.presenting_problem}`;
  }
  if (type === "timer_missed" && view.watch) {
    const what = OWED[view.watch.timer] || view.watch.timer;
    $("announce").textContent = `Team ${view.team_id}: ${what.toLowerCase()} is overdue`;
  }
  if (type === "updated" && Array.isArray(view.changed)) {
    markUnseen(view.assignment_id, view.changed);
    const what = view.changed.map((c) => CHANGES[c] || c).join(", ");
    $("announce").textContent = `The 911 center updated team ${view.team_id}'s call: ${what}`;
  }
  render();
}

function rank(item) {
  if (item.status === "offered") return 0;
  return ACTIVE.includes(item.status) ? 1 : 2;
}

function render() {
  const list = $("assignments");
  const items = [...state.items.values()].sort(
    (a, b) => rank(a) - rank(b) || Date.parse(b.offered_at) - Date.parse(a.offered_at),
  ).slice(0, 100);
  $("empty").hidden = items.length > 0;
  items.forEach((item, index) => {
    let card = state.cards.get(item.assignment_id);
    if (!card) {
      card = $("card").content.firstElementChild.cloneNode(true);
      state.cards.set(item.assignment_id, card);
    }
    fill(card, item);
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
  tick();
}

function text(card, selector, value) {
  card.querySelector(selector).textContent = value;
}

function fill(card, item) {
  const d = item.details;
  card.dataset.assignmentId = item.assignment_id;
  card.dataset.callId = item.call_id;
  card.dataset.deadline = item.deadline;
  const id = `a-${item.assignment_id}`;
  const title = card.querySelector(".title");
  title.id = id;
  card.querySelector("article").setAttribute("aria-labelledby", id);
  title.textContent = `${d.presenting_problem} · team ${item.team_id}`;
  text(card, ".problem", d.presenting_problem);
  const where = card.querySelector(".where");
  where.replaceChildren();
  const map = document.createElement("a");
  map.href = `geo:${d.location.lat},${d.location.lon}`;
  map.textContent = d.location.address || `${d.location.lat}, ${d.location.lon}`;
  where.append(map);
  text(card, ".language", d.language || "not given");
  // The danger questions a team must see unless answered no; whether anyone needs to go is not
  // one (the team is the one going), so it never reads as a warning.
  const flagged = Object.entries(d.safety).filter(([q, answer]) => q !== "in_person_needed" && answer !== "no");
  text(card, ".safety", flagged.length
    ? flagged.map(([q, a]) => `${q.replaceAll("_", " ")}: ${a}`).join(", ")
    : "all answered no");
  text(card, ".cautions", d.cautions && d.cautions.length ? d.cautions.join(", ") : "none");
  const callback = card.querySelector(".callback");
  callback.replaceChildren();
  if (d.callback_number) {
    const tel = document.createElement("a");
    tel.href = `tel:${d.callback_number}`;
    tel.textContent = d.callback_number;
    callback.append(tel);
  } else {
    callback.textContent = "none";
  }
  const changed = ACTIVE.includes(item.status) || item.status === "offered"
    ? unseen()[item.assignment_id] || [] : [];
  const note = card.querySelector(".changed");
  note.hidden = changed.length === 0;
  text(card, ".changed-what", changed.map((c) => CHANGES[c] || c).join(", "));
  note.querySelector("button").onclick = () => markSeen(item.assignment_id);
  Object.entries(FACT_OF_CHANGE).forEach(([change, selector]) => {
    card.querySelector(selector).classList.toggle("fresh", changed.includes(change));
  });
  watchLine(card, item);
  if (card.dataset.status !== item.status) {
    card.dataset.status = item.status;
    card.className = `card ${item.status}`;
    text(card, ".status", LABELS[item.status] || item.status);
    text(card, ".error", "");
    actions(card, item);
  }
}

// The timer watching an accepted assignment: what is owed and by when, or that it is overdue.
function watchLine(card, item) {
  const line = card.querySelector(".watch");
  const w = ACTIVE.includes(item.status) ? item.watch : null;
  line.hidden = !w;
  card.dataset.watchDue = w ? w.due_at : "";
  card.dataset.watchStage = w ? w.stage : "";
  if (!w) return;
  const what = OWED[w.timer] || w.timer;
  const at = new Date(w.due_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  line.classList.toggle("overdue", w.stage !== "running");
  text(card, ".watch-what", w.stage === "running" ? `${what} due by ${at}` : `${what} overdue since ${at}`);
  text(card, ".watch-more", w.stage === "overdue" ? "· the 911 center has been told"
    : w.stage === "repaged" ? "· answer now, or the 911 center is told" : "");
}

function button(label, onClick, kind) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (kind) b.className = kind;
  b.addEventListener("click", onClick);
  return b;
}

function field(labelText, control, name) {
  const wrap = document.createElement("div");
  const label = document.createElement("label");
  const fieldId = `${name}-${Math.random().toString(36).slice(2)}`;
  label.htmlFor = fieldId;
  label.textContent = labelText;
  control.id = fieldId;
  control.name = name;
  wrap.append(label, control);
  return wrap;
}

function select(options) {
  const s = document.createElement("select");
  for (const [value, label] of options) s.add(new Option(label, value));
  return s;
}

async function send(card, item, path, body) {
  const buttons = card.querySelectorAll(".actions button");
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const view = await api(`/v1/assignments/${item.assignment_id}/${path}`, {
      method: "POST", body: body ? JSON.stringify(body) : undefined,
    });
    apply(view, false);
    text(card, ".error", "");
  } catch (error) {
    text(card, ".error", error.message);
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    tick();
  }
}

function form(card, legendText, controls, submitLabel, submit) {
  const box = card.querySelector(".actions");
  box.querySelectorAll("fieldset").forEach((f) => f.remove());
  const set = document.createElement("fieldset");
  const legend = document.createElement("legend");
  legend.textContent = legendText;
  set.append(legend, ...controls, button(submitLabel, submit), button("Cancel", () => set.remove(), "secondary"));
  box.append(set);
  set.querySelector("input, select").focus();
}

function actions(card, item) {
  const box = card.querySelector(".actions");
  box.replaceChildren();
  const status = (s, extra) => () => send(card, item, "status", { status: s, ...extra });
  if (item.status === "offered") {
    box.append(button("Accept", () => send(card, item, "accept")));
    box.append(button("Decline…", () => {
      const reason = select(DECLINE_REASONS);
      const why = document.createElement("input");
      why.maxLength = 500;
      form(card, "Decline this offer", [field("Reason", reason, "reason"), field("Details", why, "details")],
        "Send decline", () => send(card, item, "decline",
          { reason_code: reason.value, reason_text: why.value.trim() || null }));
    }, "secondary"));
    return;
  }
  if (!ACTIVE.includes(item.status)) return;
  if (item.status === "accepted") box.append(button("En route", status("en_route")));
  if (item.status !== "on_scene") box.append(button("On scene", status("on_scene")));
  if (item.status === "on_scene") {
    box.append(button("Check in", () => send(card, item, "check-in", { code: "all_well" })));
  }
  box.append(button("Cleared…", () => {
    const code = select(state.dispositions.map((d) => [d.code, `${d.code} ${d.description}`]));
    form(card, "Report cleared", [field("Disposition code", code, "disposition")], "Report cleared",
      () => send(card, item, "status", { status: "cleared", disposition: code.value }));
  }, "secondary"));
  box.append(button("Request backup…", () => {
    const urgency = select([["urgent", "Urgent"], ["emergency", "Emergency"], ["routine", "Routine"]]);
    form(card, "Request backup", [field("Urgency", urgency, "urgency")], "Send backup request",
      () => send(card, item, "status", { status: "backup_requested", urgency: urgency.value }));
  }, "danger"));
}

function tick() {
  const now = Date.now();
  for (const card of state.cards.values()) {
    const owed = Math.floor((Date.parse(card.dataset.watchDue) - now) / 1000);
    card.querySelector(".watch-left").textContent = card.dataset.watchStage === "running" && owed > 0
      ? `(${Math.floor(owed / 60)}:${String(owed % 60).padStart(2, "0")} left)` : "";
    const clock = card.querySelector(".countdown");
    if (card.dataset.status !== "offered") {
      clock.textContent = "";
      continue;
    }
    const left = Math.floor((Date.parse(card.dataset.deadline) - now) / 1000);
    clock.classList.toggle("late", left <= 30);
    if (left <= 0) {
      clock.textContent = "· deadline passed";
      card.querySelectorAll(".actions button").forEach((b) => { b.disabled = true; });
    } else {
      const m = Math.floor(left / 60);
      const s = String(left % 60).padStart(2, "0");
      clock.textContent = `· answer within ${m}:${s}`;
    }
  }
}

// Server-Sent Events over fetch, so the token travels in a header (EventSource cannot send one).
function parser(onEvent) {
  let buffer = "";
  let event = { type: "message", data: [] };
  function line(l) {
    if (l === "") {
      if (event.data.length) onEvent(event.type, event.data.join("\n"));
      event = { type: "message", data: [] };
      return;
    }
    if (l.startsWith(":")) return;
    const colon = l.indexOf(":");
    const name = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? "" : l.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") event.type = value;
    else if (name === "data") event.data.push(value);
    else if (name === "id") state.lastEventId = value;
  }
  return (chunk) => {
    buffer += chunk;
    // A lone "\r" at the end may be the first half of "\r\n": keep it for the next chunk.
    const lines = buffer.split(/\r\n|\n|\r(?!$)/);
    buffer = lines.pop();
    lines.forEach(line);
  };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function follow() {
  while (state.token) {
    const controller = new AbortController();
    state.abort = controller;
    try {
      const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const response = await fetch("/v1/assignments/stream", { headers, signal: controller.signal });
      if (response.status === 401) {
        signOut("Your token is no longer accepted.");
        return;
      }
      if (!response.ok) throw new Error(`stream answered ${response.status}`);
      $("connection").textContent = "Live: new offers appear here as they arrive.";
      const feed = parser((type, data) => apply(JSON.parse(data), type));
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(value);
      }
    } catch (_) {
      if (controller.signal.aborted) return;
    }
    $("connection").textContent = "Connection lost: reconnecting…";
    await sleep(2000);
  }
}

async function signIn(token) {
  state.token = token;
  try {
    const items = await api("/v1/assignments?limit=100");
    state.dispositions = await api("/v1/dispositions");
    sessionStorage.setItem("careroute-token", token);
    $("login").hidden = true;
    $("board").hidden = false;
    $("sign-out").hidden = false;
    $("login-error").textContent = "";
    items.forEach((view) => apply(view, null));
    render();
    follow();
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem("careroute-token");
    $("login-error").textContent = error.status === 401 || error.status === 403
      ? "That token was not accepted: check it and try again."
      : error.message;
  }
}

function signOut(message) {
  if (state.abort) state.abort.abort();
  state.token = null;
  state.lastEventId = null;
  state.items.clear();
  state.cards.clear();
  sessionStorage.removeItem("careroute-token");
  sessionStorage.removeItem("careroute-unseen");
  $("assignments").replaceChildren();
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  setInterval(tick, 1000);
  const saved = sessionStorage.getItem("careroute-token");
  if (saved) signIn(saved);
});
