// careroute oversight dashboard: audit's reports for a chosen period, drawn as plain SVG and tables.
// Only the fields named here are ever shown (an allow-list); every figure comes from the API as it is.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "careroute-oversight-token";
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FUNNEL = [
  ["received", "Calls received"],
  ["behavioural_health", "Behavioural health"],
  ["eligible", "Routed to a community team"],
  ["offered", "Offered to a team"],
  ["accepted", "Accepted by a team"],
  ["on_scene", "Team on scene"],
  ["cleared", "Cleared by the team"],
  ["cleared_without_police", "Cleared without police"],
  ["cleared_with_police", "Cleared with police"],
];
// The step each share is taken of: the two kinds of clearance are both shares of all cleared.
const PREVIOUS = { cleared_without_police: "cleared", cleared_with_police: "cleared" };
const STAGES = {
  received_to_offered_s: "call in → first offer",
  offered_to_accepted_s: "offer → accepted",
  received_to_accepted_s: "call in → accepted",
  accepted_to_on_scene_s: "accepted → on scene",
  received_to_on_scene_s: "call in → on scene",
  time_to_commitment_s: "call in → a team committed or the call went back",
};
const CSV_NAMES = {
  summary: "/v1/reports/summary", areas: "/v1/reports/areas",
  workforce: "/v1/reports/workforce", shadow: "/v1/reports/shadow",
};

const state = {
  token: null, timezone: "UTC", zones: [], dispositions: {}, period: null, reports: {}, verification: null,
};
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

async function api(path, params = {}, accept = "application/json") {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${path}?${query}` : path, {
    headers: { Authorization: `Bearer ${state.token}`, Accept: accept },
  });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    const detail = body && typeof body.detail === "string" ? body.detail
      : body && Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ")
        : `the server answered ${response.status}`;
    throw new ApiError(detail, response.status, body && body.code);
  }
  return accept === "application/json" ? response.json() : response.text();
}

// Building DOM and SVG without any HTML parsing: text always goes in as text.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

// Numbers as an analyst reads them; null (nothing to measure) is a dash, never a zero.
const DASH = "–";
function count(n) { return n === null || n === undefined ? DASH : Number(n).toLocaleString("en-US"); }
function rate(x) { return x === null || x === undefined ? DASH : `${(x * 100).toFixed(1)}%`; }
function minutes(s) {
  if (s === null || s === undefined) return DASH;
  const whole = Math.round(s);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}
function share(part, whole) { return whole ? rate(part / whole) : DASH; }
function label(code) { return String(code).replaceAll("_", " ").replaceAll(":", ": "); }

// A reason code as an analyst reads it: a disposition code with its EIDO registry description.
function reasonLabel(reason) {
  const [kind, code] = String(reason).split(":");
  const known = kind === "disposition" && state.dispositions[code];
  return known ? `disposition ${code}: ${known}` : label(reason);
}

function cell(tag, value, attrs = {}) {
  return el(tag, { ...attrs, text: value });
}

function num(value, raw, attrs = {}) {
  return el("td", { class: "num", "data-value": raw === null || raw === undefined ? "" : String(raw), ...attrs, text: value });
}

function suppressedCell() {
  return el("td", { class: "num suppressed", "data-suppressed": "true", text: "suppressed" });
}

function fillBody(table, rows, empty) {
  const body = $(table).querySelector("tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const columns = $(table).querySelectorAll("thead th").length || 2;
    body.append(el("tr", { class: "none" }, el("td", { colspan: String(columns), text: empty })));
  }
}

// The period: whole local days in the jurisdiction's time zone, `to` the midnight after the last day.
function offsetMs(utcMs, tz) {
  const parts = {};
  new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(utcMs)).forEach((p) => { parts[p.type] = p.value; });
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - utcMs;
}

function midnight(day, tz) {
  const [y, m, d] = day.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d);
  let at = wall - offsetMs(wall, tz);
  at = wall - offsetMs(at, tz);
  return new Date(at).toISOString().replace(".000Z", "Z");
}

function nextDay(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

function today(tz) {
  const parts = {};
  new Intl.DateTimeFormat("en-US", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(new Date()).forEach((p) => { parts[p.type] = p.value; });
  return `${parts.year}-${parts.month}-${parts.day}`;
}

function longDate(day) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", {
    timeZone: "UTC", weekday: "short", day: "numeric", month: "short", year: "numeric",
  });
}

// 1. The funnel: one bar per step, as a share of the calls received.
function drawFunnel(funnel) {
  const width = 640, row = 30, left = 210, right = 90;
  const top = Math.max(1, funnel.received);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${row * FUNNEL.length + 6}`, role: "img",
    "aria-label": "Diversion funnel: calls reaching each step",
  });
  FUNNEL.forEach(([key, name], i) => {
    const y = i * row + 3;
    const w = ((width - left - right) * funnel[key]) / top;
    chart.append(svg("text", { x: left - 8, y: y + 18, "text-anchor": "end", class: "axis" }, name));
    chart.append(svg("rect", { x: left, y, width: Math.max(w, funnel[key] ? 2 : 0), height: row - 8, class: `bar bar-${key}` }));
    chart.append(svg("text", { x: left + w + 6, y: y + 18, class: "value" }, count(funnel[key])));
  });
  $("funnel-chart").replaceChildren(chart);
  fillBody("funnel-table", FUNNEL.map(([key, name], i) => {
    const previous = i === 0 ? null : funnel[PREVIOUS[key] || FUNNEL[i - 1][0]];
    return el("tr", { "data-step": key }, cell("th", name, { scope: "row" }), num(count(funnel[key]), funnel[key]),
      num(share(funnel[key], funnel.received), null), num(i === 0 ? DASH : share(funnel[key], previous), null));
  }), "");
}

// 2. Outcomes and their reasons, hand-backs, overrides and backup requests.
function drawOutcomes(summary) {
  const out = summary.outcomes;
  const totals = Object.entries(out.totals).filter(([, n]) => n > 0);
  fillBody("outcomes-table", totals.map(([code, n]) => el("tr", { "data-code": code },
    cell("th", label(code), { scope: "row" }), num(count(n), n), num(share(n, out.behavioural_health), null))),
  "No behavioural-health call in this period.");
  const reasons = [];
  for (const [code, byReason] of Object.entries(out.reasons)) {
    for (const [reason, n] of Object.entries(byReason)) {
      reasons.push(el("tr", { "data-code": code, "data-reason": reason },
        cell("td", label(code)), cell("td", reasonLabel(reason)), num(count(n), n)));
    }
  }
  fillBody("reasons-table", reasons, "None.");
  fillBody("handbacks-table", Object.entries(summary.hand_backs).map(([reason, n]) =>
    el("tr", { "data-reason": reason }, cell("th", label(reason), { scope: "row" }), num(count(n), n))), "None.");
  fillBody("overrides-table", Object.entries(summary.overrides).map(([key, n]) =>
    el("tr", { "data-key": key }, cell("th", label(key), { scope: "row" }), num(count(n), n))), "None.");
  $("backups").textContent = `${count(summary.backup_requests)} ${summary.backup_requests === 1 ? "time" : "times"}`;
}

// 3. Percentiles of each step's duration, by agency, and the time to commitment over all calls.
function drawTimes(summary) {
  const rows = [];
  const add = (agency, stage, p) => {
    if (!p.count) return;
    rows.push(el("tr", { "data-agency": agency, "data-stage": stage },
      cell("th", agency === "all" ? "all agencies" : agency, { scope: "row" }), cell("td", STAGES[stage] || label(stage)),
      num(count(p.count), p.count), num(minutes(p.p50), p.p50), num(minutes(p.p90), p.p90), num(minutes(p.p99), p.p99)));
  };
  add("all", "time_to_commitment_s", summary.time_to_commitment_s);
  for (const [agency, stages] of Object.entries(summary.times_by_agency)) {
    for (const stage of Object.keys(STAGES)) if (stages[stage]) add(agency, stage, stages[stage]);
  }
  fillBody("times-table", rows, "No call reached a timed step in this period.");
}

// A heat map's shade: six levels of the largest count shown (0 is blank).
function level(n, most) { return n > 0 ? Math.max(1, Math.ceil((5 * n) / Math.max(1, most))) : 0; }

function hourHeader(first) {
  const tr = el("tr", {}, cell("th", first, { scope: "col" }));
  for (let h = 0; h < 24; h += 1) tr.append(cell("th", String(h).padStart(2, "0"), { scope: "col", class: "num" }));
  tr.append(cell("th", "All", { scope: "col", class: "num" }));
  return tr;
}

// 4. Coverage gaps: 7 weekdays x 24 local hours, with each day's and each hour's total.
function drawGaps(summary) {
  const gaps = summary.coverage_gaps_by_hour_of_week;
  const most = Math.max(0, ...gaps);
  const table = $("gaps-table");
  table.querySelector("thead").replaceChildren(hourHeader(`Day (${summary.timezone})`));
  const rows = DAYS.map((day, d) => {
    const values = gaps.slice(d * 24, d * 24 + 24);
    const tr = el("tr", { "data-day": day }, cell("th", day, { scope: "row" }));
    values.forEach((n, h) => tr.append(num(n ? count(n) : "", n, { class: `num heat-${level(n, most)}`, "data-hour": String(h) })));
    const total = values.reduce((a, b) => a + b, 0);
    tr.append(num(count(total), total, { class: "num total" }));
    return tr;
  });
  const totals = el("tr", { class: "totals" }, cell("th", "All", { scope: "row" }));
  for (let h = 0; h < 24; h += 1) {
    const n = DAYS.reduce((a, _, d) => a + gaps[d * 24 + h], 0);
    totals.append(num(count(n), n, { class: "num total" }));
  }
  const all = gaps.reduce((a, b) => a + b, 0);
  totals.append(num(count(all), all, { class: "num total" }));
  table.querySelector("tbody").replaceChildren(...rows, totals);
  $("gaps-none").hidden = all > 0;
}

// 5a. The zone map: each zone's polygon from the jurisdiction file, shaded by its diversion rate.
function drawMap(report) {
  const box = $("zone-map");
  if (!state.zones.length) {
    box.replaceChildren(el("p", { class: "muted", text: "The jurisdiction file names no zones." }));
    return;
  }
  const corners = state.zones.flatMap((z) => z.polygon);
  const lons = corners.map((c) => c[0]), lats = corners.map((c) => c[1]);
  const [west, east, south, north] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  // Longitude shrinks with latitude: scaled by cos(latitude) so the zones keep their shape.
  const k = Math.cos((((south + north) / 2) * Math.PI) / 180);
  // Fitted into at most 460 x 360, whichever bounds it first.
  const pad = 14;
  const scale = Math.min(432 / Math.max(1e-9, (east - west) * k), 332 / Math.max(1e-9, north - south));
  const width = (east - west) * k * scale + 2 * pad, height = (north - south) * scale + 2 * pad;
  const x = (lon) => pad + (lon - west) * k * scale;
  const y = (lat) => pad + (north - lat) * scale;
  const byZone = Object.fromEntries(report.zones.map((z) => [z.zone, z.total]));
  const map = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Map of the zones" });
  const defs = svg("defs");
  const hatch = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  hatch.append(svg("rect", { width: 6, height: 6, class: "hatch-bg" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  defs.append(hatch);
  map.append(defs);
  // Where zones overlap the first listed wins: drawn last, on top; each label sits in the part the
  // zone owns, then all labels go over all shapes.
  const owned = state.zones.map((zone, n) => ownedCentre(state.zones, n, [west, east, south, north]));
  [...state.zones].reverse().forEach((zone) => {
    const total = byZone[zone.name];
    const hidden = !total || total.suppressed;
    const points = zone.polygon.map(([lon, lat]) => `${x(lon).toFixed(1)},${y(lat).toFixed(1)}`).join(" ");
    const shade = hidden || total.diversion_rate === null ? 0 : 1 + Math.min(4, Math.floor(total.diversion_rate * 5));
    const polygon = svg("polygon", { points, class: hidden ? "zone zone-suppressed" : `zone zone-${shade}`, "data-zone": zone.name });
    polygon.append(svg("title", {}, hidden ? `${zone.name}: suppressed` : `${zone.name}: ${count(total.calls)} calls, ${rate(total.diversion_rate)} diverted`));
    map.append(polygon);
  });
  state.zones.forEach((zone, n) => {
    const total = byZone[zone.name];
    const [lon, lat] = owned[n];
    map.append(svg("text", { x: x(lon), y: y(lat) - 2, "text-anchor": "middle", class: "zone-name" }, zone.name));
    map.append(svg("text", { x: x(lon), y: y(lat) + 11, "text-anchor": "middle", class: "zone-figure" },
      !total || total.suppressed ? "suppressed" : `${count(total.calls)} calls`));
  });
  const legend = el("p", { class: "legend" }, "Share diverted:");
  ["0–20%", "20–40%", "40–60%", "60–80%", "80–100%"].forEach((range, n) => {
    legend.append(el("span", { class: `swatch zone-${n + 1}` }), ` ${range}`);
  });
  legend.append(el("span", { class: "swatch zone-suppressed" }), " suppressed");
  box.replaceChildren(map, legend);
}

function inside(lon, lat, ring) {
  let hit = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

// The middle of the part of zone `n` no earlier zone claims, sampled on a 40 x 40 grid.
function ownedCentre(zones, n, [west, east, south, north]) {
  const ring = zones[n].polygon;
  let lon = 0, lat = 0, hits = 0;
  for (let i = 0; i < 40; i += 1) {
    for (let j = 0; j < 40; j += 1) {
      const px = west + ((east - west) * (i + 0.5)) / 40, py = south + ((north - south) * (j + 0.5)) / 40;
      if (inside(px, py, ring) && !zones.slice(0, n).some((z) => inside(px, py, z.polygon))) {
        lon += px; lat += py; hits += 1;
      }
    }
  }
  if (hits) return [lon / hits, lat / hits];
  return [ring.reduce((a, c) => a + c[0], 0) / ring.length, ring.reduce((a, c) => a + c[1], 0) / ring.length];
}

const PLACE_NAMES = { unzoned: "outside every zone", unlocated: "no position", all: "all" };

function areaRow(name, total, attrs = {}) {
  const head = cell("th", PLACE_NAMES[name] || name, { scope: "row" });
  if (total.suppressed) {
    return el("tr", { "data-zone": name, "data-suppressed": "true", ...attrs }, head,
      ...Array.from({ length: 6 }, () => suppressedCell()));
  }
  const t = total.call_to_on_scene_s || {};
  return el("tr", { "data-zone": name, ...attrs }, head, num(count(total.calls), total.calls),
    num(rate(total.diversion_rate), total.diversion_rate), num(rate(total.police_involvement_rate), total.police_involvement_rate),
    num(rate(total.hand_back_rate), total.hand_back_rate), num(minutes(t.p50), t.p50), num(minutes(t.p90), t.p90));
}

// 5b. The area table (each zone over all hours, then all calls) and its zone x hour grid of calls.
function drawAreas(report) {
  document.querySelectorAll(".min-cell").forEach((n) => { n.textContent = String(report.min_cell); });
  fillBody("areas-table", [...report.zones.map((z) => areaRow(z.zone, z.total)),
    areaRow("all", report.total, { class: "totals" })], "");
  const table = $("area-hours-table");
  table.querySelector("thead").replaceChildren(hourHeader(`Zone (${report.timezone})`));
  const gridCell = (c, h) => (c.suppressed
    ? el("td", { class: "num suppressed", "data-suppressed": "true", "data-hour": h, title: "suppressed" }, el("span", { class: "visually-hidden", text: "suppressed" }))
    : num(count(c.calls), c.calls, { "data-hour": h }));
  const rows = report.zones.map((z) => el("tr", { "data-zone": z.zone },
    cell("th", PLACE_NAMES[z.zone] || z.zone, { scope: "row" }), ...z.hours.map((c) => gridCell(c, String(c.hour))), gridCell(z.total, "all")));
  rows.push(el("tr", { "data-zone": "all", class: "totals" }, cell("th", "All", { scope: "row" }),
    ...report.hours.map((c) => gridCell(c, String(c.hour))), gridCell(report.total, "all")));
  table.querySelector("tbody").replaceChildren(...rows);
}

// 6. Workforce: per hour of the week, teams needed (bars) against places on shift (line).
function drawWorkforce(report) {
  const i = report.inputs, t = report.totals;
  $("workforce-model").textContent = `Erlang C (M/M/c): the fewest crisis teams so that ${rate(i.target)} of eligible calls wait`
    + ` at most ${i.within_min} min for a team, from ${count(i.eligible_calls)} eligible calls over ${i.weeks} week(s) and a mean`
    + ` busy time of ${i.mean_busy_min === null ? "unknown (no call both accepted and cleared)" : `${i.mean_busy_min} min per call`}.`
    + ` Hours are local (${report.timezone}).`;
  const width = 840, height = 200, left = 34, bottom = 24, top = 8;
  const peak = Math.max(1, ...report.hours.map((h) => Math.max(h.teams_needed || 0, h.places_on_shift)));
  // Four steps of whole teams, the top one at or above the peak.
  const tick = Math.max(1, Math.ceil(peak / 4));
  const most = Math.ceil(peak / tick) * tick;
  const step = (width - left) / 168;
  const yOf = (v) => top + (height - top - bottom) * (1 - v / most);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Teams needed and places on shift by hour of the week" });
  chart.append(svg("text", { x: 2, y: top + 2, class: "axis", transform: `rotate(-90 2 ${top + 2})`, "text-anchor": "end", dy: "0.8em" }, "teams"));
  for (let v = 0; v <= most; v += tick) {
    chart.append(svg("line", { x1: left, x2: width, y1: yOf(v), y2: yOf(v), class: "grid" }));
    chart.append(svg("text", { x: left - 4, y: yOf(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  DAYS.forEach((day, d) => {
    chart.append(svg("line", { x1: left + d * 24 * step, x2: left + d * 24 * step, y1: top, y2: height - bottom, class: "day" }));
    chart.append(svg("text", { x: left + (d * 24 + 12) * step, y: height - 6, "text-anchor": "middle", class: "axis" }, day));
  });
  let path = "";
  report.hours.forEach((h, n) => {
    const x = left + n * step;
    if (h.teams_needed) {
      chart.append(svg("rect", { x: x + 0.5, y: yOf(h.teams_needed), width: Math.max(1, step - 1), height: yOf(0) - yOf(h.teams_needed), class: h.shortfall ? "need short" : "need" }));
    }
    path += `${n ? "L" : "M"}${x.toFixed(1)},${yOf(h.places_on_shift).toFixed(1)}H${(x + step).toFixed(1)}`;
  });
  chart.append(svg("path", { d: path, class: "on-shift" }));
  const legend = el("p", { class: "legend" }, el("span", { class: "swatch need" }), " teams needed ",
    el("span", { class: "swatch short" }), " needed, more than on shift ", el("span", { class: "swatch line" }), " places on shift");
  $("workforce-chart").replaceChildren(chart, legend);
  $("workforce-totals").textContent = `Team-hours a week: needed ${count(t.team_hours_needed)}, on shift ${count(t.team_hours_on_shift)},`
    + ` short ${count(t.shortfall_team_hours)}.${t.worst_hour_of_week === null ? "" : ` Shortest of teams: ${DAYS[Math.floor(t.worst_hour_of_week / 24)]} ${String(t.worst_hour_of_week % 24).padStart(2, "0")}:00.`}`;
  const shown = report.hours.filter((h) => h.arrivals > 0 || h.shortfall);
  fillBody("workforce-table", shown.map((h) => el("tr", { "data-hour-of-week": String(h.hour_of_week) },
    cell("th", DAYS[Math.floor(h.hour_of_week / 24)], { scope: "row" }), num(`${String(h.hour).padStart(2, "0")}:00`, h.hour),
    num(count(h.arrivals), h.arrivals), num(h.arrivals_per_h === null ? DASH : h.arrivals_per_h.toFixed(2), h.arrivals_per_h),
    num(count(h.teams_needed), h.teams_needed), num(count(h.places_on_shift), h.places_on_shift),
    num(count(h.shortfall), h.shortfall, { class: h.shortfall ? "num short-text" : "num" }),
    num(rate(h.share_within_on_shift), h.share_within_on_shift))), "No eligible call in this period.");
}

// 7. Shadow differences by pair of routes.
function drawShadow(report) {
  $("shadow-line").textContent = `${count(report.compared)} calls triaged by both rule sets; ${count(report.differ)}`
    + ` would be routed differently by the draft rules (${report.other_versions.join(", ") || DASH}) than by the rules in force`
    + ` (${report.active_versions.join(", ") || DASH}).`;
  fillBody("shadow-table", report.pairs.map((p) => el("tr", { "data-pair": `${p.active}>${p.other}` },
    cell("td", p.active), cell("td", p.other), num(count(p.calls), p.calls), el("td", { class: "ids", text: p.call_ids.join(" ") }))),
  "No call would be routed differently.");
}

// 8. The trail's integrity: its newest signed checkpoint and this page's own verification.
function integrityFacts() {
  const i = state.reports.integrity, v = state.verification;
  const c = i && i.checkpoint;
  const facts = [
    ["trail_rows", "Rows in the trail", i ? count(i.head_seq) : DASH],
    ["checkpoint_tree_size", "Last signed checkpoint: tree size", c ? count(c.tree_size) : "none signed yet"],
    ["checkpoint_signed_at", "Last signed checkpoint: signed at", c ? new Date(c.signed_at).toISOString().replace(".000Z", "Z") : DASH],
    ["checkpoint_signature", "Last signed checkpoint: signature", c ? (c.signature_ok ? "verifies with audit's key" : "DOES NOT VERIFY") : DASH],
    ["checkpoint_root", "Last signed checkpoint: root hash", c ? c.root_hash : DASH],
  ];
  if (v && v.error) {
    facts.push(["verification_result", "Last verification: result", `could not run: ${v.error}`]);
  } else if (v) {
    facts.push(
      ["verification_at", "Last verification: run at", v.at],
      ["verification_result", "Last verification: result", v.ok ? "OK: the chain and every checkpoint hold" : `FAILED at row ${v.first_bad_seq}: ${v.reason}`],
      ["verification_rows", "Last verification: rows checked", count(v.checked)],
      ["verification_checkpoints", "Last verification: checkpoints checked", count(v.checkpoints_checked)],
    );
  } else {
    facts.push(["verification_result", "Last verification: result", "verifying…"]);
  }
  return facts;
}

function drawIntegrity() {
  const v = state.verification;
  const rows = integrityFacts().map(([key, name, value]) => el("tr", { "data-fact": key },
    cell("th", name, { scope: "row" }), el("td", { class: key === "checkpoint_root" ? "ids" : key === "verification_result" && v ? (v.ok ? "ok" : "bad") : "", text: value })));
  $("integrity-table").querySelector("tbody").replaceChildren(...rows);
}

async function verify() {
  state.verification = null;
  drawIntegrity();
  try {
    const [integrity, result] = await Promise.all([api("/v1/reports/integrity"), api("/v1/audit/verify")]);
    state.reports.integrity = integrity;
    state.verification = { ...result, at: new Date().toISOString().replace(/\.\d{3}Z$/, "Z") };
  } catch (error) {
    state.verification = { error: error.message };
  }
  drawIntegrity();
}

function csvQuote(value) {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function save(text, name) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  const link = el("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// A table's CSV is the API's own (Accept: text/csv); a summary table keeps its sections' rows.
async function download(button) {
  const what = button.dataset.csv;
  const stamp = `${state.period.fromDay}_${state.period.toDay}`;
  if (what === "integrity") {
    const lines = [["figure", "value"], ...integrityFacts().map(([key, , value]) => [key, value])];
    save(lines.map((l) => l.map(csvQuote).join(",")).join("\r\n") + "\r\n", `careroute-integrity-${stamp}.csv`);
    return;
  }
  let text = await api(CSV_NAMES[what], state.period.params, "text/csv");
  let name = `careroute-${what}-${stamp}.csv`;
  if (button.dataset.sections) {
    const keep = ["period", ...button.dataset.sections.split(",")];
    const lines = text.split("\r\n").filter((l) => l);
    text = [lines[0], ...lines.slice(1).filter((l) => keep.includes(l.split(",")[0]))].join("\r\n") + "\r\n";
    name = `careroute-summary-${button.dataset.sections.split(",")[0]}-${stamp}.csv`;
  }
  save(text, name);
}

async function show(fromDay, toDay) {
  $("period-error").textContent = "";
  if (!fromDay || !toDay || fromDay > toDay) {
    $("period-error").textContent = "Choose a first day on or before the last day.";
    return;
  }
  // A period refused leaves the figures shown, and the line naming their period, as they were.
  const shown = { text: $("period").textContent, loaded: document.body.dataset.loaded };
  // Set again once every figure of the new period is drawn and the trail verified.
  delete document.body.dataset.loaded;
  const params = { from: midnight(fromDay, state.timezone), to: midnight(nextDay(toDay), state.timezone) };
  $("period").textContent = `Loading ${longDate(fromDay)} to ${longDate(toDay)}…`;
  try {
    const [summary, areas, workforce, shadow] = await Promise.all([
      api("/v1/reports/summary", params), api("/v1/reports/areas", params),
      api("/v1/reports/workforce", params), api("/v1/reports/shadow", params),
    ]);
    state.period = { fromDay, toDay, params };
    state.reports = { ...state.reports, summary, areas, workforce, shadow };
  } catch (error) {
    if (error.status === 401) { signOut("Your token is no longer accepted."); return; }
    $("period-error").textContent = `${error.message}${error.code ? ` (${error.code})` : ""}`;
    $("period").textContent = shown.text;
    if (shown.loaded) document.body.dataset.loaded = shown.loaded;
    return;
  }
  const period = $("period");
  period.dataset.from = params.from;
  period.dataset.to = params.to;
  period.textContent = `Calls received from ${longDate(fromDay)} to ${longDate(toDay)} inclusive,`
    + ` local days in ${state.timezone} (${params.from} to ${params.to}).`;
  const { summary, areas, workforce, shadow } = state.reports;
  $("empty-note").hidden = summary.funnel.received > 0;
  drawFunnel(summary.funnel);
  drawOutcomes(summary);
  drawTimes(summary);
  drawGaps(summary);
  drawMap(areas);
  drawAreas(areas);
  drawWorkforce(workforce);
  drawShadow(shadow);
  await verify();
  document.body.dataset.loaded = `${params.from}/${params.to}`;
}

async function signIn(token) {
  state.token = token;
  $("login-error").textContent = "";
  try {
    const [zones, dispositions] = await Promise.all([api("/v1/reports/zones"), api("/v1/reports/dispositions")]);
    state.timezone = zones.timezone;
    state.zones = zones.zones;
    state.dispositions = Object.fromEntries(dispositions.map((d) => [d.code, d.description]));
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = error.status === 401
      ? "That token was not accepted: check it and try again."
      : error.status === 403
        ? "That token may not read the oversight reports: it takes an oversight or admin token."
        : `Could not sign in: ${error.message}`;
    return;
  }
  $("login").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  $("print").hidden = false;
  const last = today(state.timezone);
  const [y, m, d] = last.split("-").map(Number);
  $("from").value = $("from").value || new Date(Date.UTC(y, m - 1, d - 6)).toISOString().slice(0, 10);
  $("to").value = $("to").value || last;
  await show($("from").value, $("to").value);
}

function signOut(message = "") {
  state.token = null;
  state.reports = {};
  state.verification = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("print").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("token").value = "";
  $("token").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => { event.preventDefault(); signIn($("token").value.trim()); });
  $("period-form").addEventListener("submit", (event) => { event.preventDefault(); show($("from").value, $("to").value); });
  $("sign-out").addEventListener("click", () => signOut());
  $("print").addEventListener("click", () => window.print());
  $("verify-again").addEventListener("click", () => verify());
  $("download-summary").addEventListener("click", (event) => download(event.currentTarget));
  document.querySelectorAll("button.csv").forEach((b) => b.addEventListener("click", () => download(b)));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
});
