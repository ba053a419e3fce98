// Lobby board: calls now and recently, waits per department, clock; labels in Japanese with a
// rotating second language. Query: site, token, floor=N or departments=a,b, mute=1|0, rotate=s, alt=en,ko,
// hold=min (how long a call stays under "now calling"), speed=x (announcement playback rate).
import { I18n, LANGS, Link, el, params, pick } from "./common.js";

// second languages in turn; ?alt=en or ?alt=en,pt pins them (e.g. a board by the foreign residents' desk)
const ALT_LANGS = (params.get("alt") || "").split(",").filter((l) => LANGS.includes(l) && l !== "ja").length
  ? params.get("alt").split(",").filter((l) => LANGS.includes(l) && l !== "ja")
  : LANGS.filter((l) => l !== "ja");
const ROTATE_S = Number(params.get("rotate") || 6);
const HOLD_S = Number(params.get("hold") || 10) * 60;
const FRESH_S = 60;        // a call older than this (e.g. replayed after a long outage) is not spoken
const NEW_S = 15;          // a call is highlighted this long
const MAX_CARDS = 5;
const MAX_RECENT = 12;
const SPEED = Number(params.get("speed") || 1);
const TZ = params.get("tz") || "Asia/Tokyo";

const state = {
  i18n: null,
  alt: ALT_LANGS[0],
  calls: new Map(),   // seq -> call; the dedupe key: a replayed or repeated push is shown once
  waits: [],
  counters: [],
  site: null,
  offset: 0,          // server clock minus ours, seconds
  muted: readMute(),
};
window.__board = state;             // for tests and for staff poking at a board with devtools
window.__announcements = [];

function readMute() {
  if (params.has("mute")) return params.get("mute") === "1";
  return localStorage.getItem("madoguchi.board.mute") === "1";
}

const serverNow = () => Date.now() / 1000 + state.offset;
const t = (key, fields, lang = "ja") => state.i18n.t(key, lang, fields);

/** A label: Japanese text and, under it, the current rotating language. */
function label(key, fields = {}) {
  return [el("span", { class: "ja" }, t(key, fields)), el("span", { class: "alt", lang: state.alt }, t(key, fields, state.alt))];
}
function labelName(names) {
  return [el("span", { class: "ja" }, pick(names, "ja")), el("span", { class: "alt", lang: state.alt }, pick(names, state.alt))];
}

// ------------------------------------------------------------------ filters (per site and floor)
function shownDepartments() {
  if (params.get("departments")) return new Set(params.get("departments").split(",").map((s) => s.trim()).filter(Boolean));
  if (params.get("floor")) {
    const floor = Number(params.get("floor"));
    return new Set(state.counters.filter((c) => c.floor === floor).flatMap((c) => c.departments));
  }
  return null;  // everything
}
function callShown(c) {
  if (params.get("floor")) return c.floor === Number(params.get("floor"));
  const deps = shownDepartments();
  return !deps || deps.has(c.department);
}

// ------------------------------------------------------------------ rendering
function renderLabels() {
  for (const node of document.querySelectorAll("[data-label]")) node.replaceChildren(...label(node.dataset.label));
  document.getElementById("mute").textContent = t(state.muted ? "board.sound_off" : "board.sound_on") + " / " +
    t(state.muted ? "board.sound_off" : "board.sound_on", {}, state.alt);
  const conn = document.getElementById("conn-state");
  conn.textContent = t(`conn.${document.body.dataset.conn || "connecting"}`);
}

function renderHeader() {
  if (state.site) {
    document.getElementById("site-ja").textContent = pick(state.site, "ja");
    const alt = document.getElementById("site-alt");
    alt.textContent = pick(state.site, state.alt);
    alt.lang = state.alt;
  }
}

function renderClock() {
  const now = new Date(serverNow() * 1000);  // the server's clock: a TV's own clock drifts
  document.getElementById("clock").textContent = now.toLocaleTimeString("ja-JP", { timeZone: TZ, hour: "2-digit", minute: "2-digit", hour12: false });
  document.getElementById("date").textContent = now.toLocaleDateString("ja-JP", { timeZone: TZ, month: "long", day: "numeric", weekday: "short" });
}

function splitCalls() {
  const now = serverNow();
  const calls = [...state.calls.values()].filter(callShown).sort((a, b) => b.seq - a.seq);
  const calling = [];
  const counters = new Set();
  const numbersNow = new Set();
  for (const c of calls) {
    // one card per counter: its latest call, while it is recent enough to matter
    if (counters.has(c.counter)) continue;
    counters.add(c.counter);
    if (!c.ended && now - c.at < HOLD_S && calling.length < MAX_CARDS && !numbersNow.has(c.number)) {
      calling.push(c);
      numbersNow.add(c.number);
    }
  }
  const recent = [];
  const seen = new Set(numbersNow);
  for (const c of calls) {
    if (seen.has(c.number)) continue;
    seen.add(c.number);
    recent.push(c);
    if (recent.length >= MAX_RECENT) break;
  }
  return { calling, recent };
}

function showFloor() {
  // a floor board shows only its floor: saying the floor again is noise; the main board says it
  return !params.get("floor") && new Set(state.counters.map((c) => c.floor)).size > 1;
}

function renderCalls() {
  const { calling, recent } = splitCalls();
  const now = serverNow();
  const grid = document.getElementById("calling");
  if (!calling.length) {
    grid.replaceChildren(el("p", { class: "empty" }, ...label("board.none_called")));
  } else {
    grid.replaceChildren(...calling.map((c, i) => {
      const isNew = now - c.at < NEW_S;
      return el("div", { class: `call-card${i === 0 ? " first" : ""}${isNew ? " new" : ""}`, dataset: { seq: c.seq, number: c.number, counter: c.counter } },
        el("div", { class: "number" }, c.number),
        el("div", { class: "arrow", "aria-hidden": "true" }, "▶"),
        el("div", { class: "where" },
          ...label("board.counter_n", { n: c.counter }),
          showFloor() ? el("span", { class: "alt" }, t("board.floor_n", { n: c.floor }), " / ", t("board.floor_n", { n: c.floor }, state.alt)) : null,
          c.recall ? el("span", { class: "badge" }, t("board.recall"), " / ", t("board.recall", {}, state.alt)) : null));
    }));
  }
  document.getElementById("recent").replaceChildren(...recent.map((c) =>
    el("li", { dataset: { seq: c.seq, number: c.number } }, c.number, el("small", {}, t("board.counter_n", { n: c.counter })))));
}

function waitText(w, lang) {
  if (w.wait_minutes === null || w.wait_minutes === undefined) return t("board.unknown_wait", {}, lang);
  if (w.wait_minutes < 1) return t("board.no_wait", {}, lang);
  return t("board.minutes", { n: Math.ceil(w.wait_minutes) }, lang);
}

function renderWaits() {
  const deps = shownDepartments();
  const rows = state.waits.filter((w) => !deps || deps.has(w.department));
  document.querySelector("#waits tbody").replaceChildren(...rows.map((w) => {
    const closed = w.wait_minutes === null || w.wait_minutes === undefined;
    return el("tr", { dataset: { department: w.department } },
      el("td", { class: "dept" }, ...labelName(w.name)),
      el("td", { class: "num" }, t("board.people", { n: w.waiting })),
      el("td", { class: `num${closed ? " closed" : ""}` }, el("span", { class: "ja" }, waitText(w, "ja")),
        el("span", { class: "alt", lang: state.alt }, waitText(w, state.alt))));
  }));
}

function render() {
  renderLabels();
  renderHeader();
  renderCalls();
  renderWaits();
}

// ------------------------------------------------------------------ announcements: one at a time
const queue = [];
let playing = false;

function enqueue(call) {
  queue.push(call);
  pump();
}

async function pump() {
  if (playing) return;
  playing = true;
  while (queue.length) await announce(queue.shift());
  playing = false;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fetchWhenReady(url, timeoutMs = 20000) {
  // the server synthesises after pushing the call: 404 until the file is there
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const r = await fetch(url, { cache: "no-store" });
      if (r.ok) return await r.blob();
    } catch (e) { /* offline: try again */ }
    await sleep(300);
  }
  return null;
}

function playBlob(blob) {
  return new Promise((resolve) => {
    const audio = new Audio(URL.createObjectURL(blob));
    audio.playbackRate = SPEED;
    let done = false;
    const finish = (ok) => { if (!done) { done = true; URL.revokeObjectURL(audio.src); resolve(ok); } };
    audio.onended = () => finish(true);
    audio.onerror = () => finish(false);
    audio.onloadedmetadata = () => setTimeout(() => finish(true), (audio.duration / SPEED) * 1000 + 3000);
    audio.play().catch(() => {
      document.getElementById("unlock").hidden = false;  // autoplay refused: a tap unlocks sound
      finish(false);
    });
  });
}

let audioCtx = null;
function chime() {
  // fallback when the voice file never came: the same two tones, made in the browser
  return new Promise((resolve) => {
    try {
      audioCtx = audioCtx || new AudioContext();
      const now = audioCtx.currentTime;
      for (const [freq, at] of [[659.25, 0], [523.25, 0.55]]) {
        const o = audioCtx.createOscillator();
        const g = audioCtx.createGain();
        o.frequency.value = freq;
        g.gain.setValueAtTime(0.3, now + at);
        g.gain.exponentialRampToValueAtTime(0.001, now + at + 0.9);
        o.connect(g).connect(audioCtx.destination);
        o.start(now + at);
        o.stop(now + at + 0.9);
      }
    } catch (e) { /* no audio at all */ }
    setTimeout(resolve, 1500);
  });
}

async function announce(call) {
  const entry = { seq: call.seq, number: call.number, counter: call.counter, recall: call.recall, url: call.audio || null };
  window.__announcements.push(entry);
  if (window.__announcements.length > 200) window.__announcements.shift();  // a board runs all day
  if (state.muted) { entry.skipped = "muted"; return; }
  const blob = call.audio ? await fetchWhenReady(call.audio) : null;
  entry.bytes = blob ? blob.size : 0;
  entry.start = performance.now();
  entry.ok = blob ? await playBlob(blob) : (await chime(), false);
  entry.end = performance.now();
}

// ------------------------------------------------------------------ data in
function addCall(c, announceIt) {
  if (state.calls.has(c.seq)) return false;   // dedupe: the same seq is shown (and spoken) once
  state.calls.set(c.seq, c);
  // keep the map small on a board that runs all day
  if (state.calls.size > 200) {
    const drop = [...state.calls.keys()].sort((a, b) => a - b).slice(0, state.calls.size - 200);
    for (const k of drop) state.calls.delete(k);
  }
  if (announceIt && callShown(c) && serverNow() - c.at < FRESH_S) enqueue(c);
  return true;
}

function onReady(result, resumedFrom) {
  state.offset = result.server_time - Date.now() / 1000;
  const board = result.snapshot.board;
  state.site = board.site_name;
  state.waits = board.waits;
  state.counters = board.counters;
  // the server could not replay what we missed (another database, or too long away): forget our
  // calls, whose seqs may be reused, and show the snapshot's history; nothing old is announced
  if (result.truncated) {
    state.calls.clear();
    resumedFrom = null;
  }
  // oldest first, so calls made while we were away are announced in their order; the replayed
  // pushes that follow carry the same seqs and are dropped as already seen
  for (const c of [...(board.recent_calls || [])].reverse()) addCall(c, resumedFrom !== null && c.seq > resumedFrom);
  render();
}

function onPush(msg) {
  if (msg.push === "call") {
    if (addCall(msg.data, true)) renderCalls();
  } else if (msg.push === "call_end") {
    // returned to the queue or marked absent: the number leaves "now calling" at that counter
    for (const c of state.calls.values()) {
      if (c.number === msg.data.number && c.counter === msg.data.counter && c.seq < msg.data.seq) c.ended = true;
    }
    renderCalls();
  } else if (msg.push === "waits") {
    state.waits = msg.data;
    renderWaits();
  }
}

function onState(s) {
  document.body.dataset.conn = s;
  document.body.classList.toggle("offline", s === "offline");
  document.body.classList.toggle("connecting", s === "connecting");
  document.getElementById("offline").hidden = s !== "offline";
  if (state.i18n) renderLabels();
}

async function main() {
  state.i18n = await I18n.load("messages.json");
  render();
  renderClock();
  setInterval(renderClock, 1000);
  setInterval(renderCalls, 1000);  // ages the "new" highlight and the hold window
  let i = 0;
  setInterval(() => {
    i = (i + 1) % ALT_LANGS.length;
    state.alt = ALT_LANGS[i];
    render();
  }, ROTATE_S * 1000);
  document.getElementById("mute").addEventListener("click", toggleMute);
  document.addEventListener("keydown", (e) => { if (e.key === "m") toggleMute(); });
  document.addEventListener("click", () => { document.getElementById("unlock").hidden = true; });
  window.__link = new Link({
    hello: () => ({ role: "display", site: params.get("site") || undefined, token: params.get("token") || "",
      device: params.get("device") || "board" }),
    onReady, onPush, onState,
    onFatal: () => onState("offline"),
  }).start();
}

function toggleMute() {
  state.muted = !state.muted;
  localStorage.setItem("madoguchi.board.mute", state.muted ? "1" : "0");
  if (state.muted) queue.length = 0;
  renderLabels();
}

main();
