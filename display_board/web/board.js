// Lobby board: calls now (呼出中), numbers being served (対応中), numbers called but absent, recent
// calls, waits per department, clock; labels in Japanese with a rotating second language.
// Query: site, token, floor=N or departments=a,b, mute=1|0, rotate=s, alt=en,ko,
// hold=min (how long a call stays under "now calling"), speed=x (announcement playback rate).
import { I18n, LANGS, Link, el, params, pick, setLang } from "./common.js";

// second languages in turn; ?alt=en or ?alt=en,pt pins them (e.g. a board by the foreign residents' desk)
const ALT_LANGS = (params.get("alt") || "").split(",").filter((l) => LANGS.includes(l) && l !== "ja").length
  ? params.get("alt").split(",").filter((l) => LANGS.includes(l) && l !== "ja")
  : LANGS.filter((l) => l !== "ja");
const ROTATE_S = Number(params.get("rotate") || 6);
const HOLD_S = Number(params.get("hold") || 10) * 60;
const FRESH_S = 60;        // a call older than this on arrival (e.g. replayed after an outage) is not spoken
const STALE_S = 90;        // ... nor one still waiting to be spoken this long after it was made
const NEW_S = 15;          // a call is highlighted this long
const MAX_CARDS = 6;
const MAX_RECENT = 12;
const SPEED = Number(params.get("speed") || 1);
const TZ = params.get("tz") || "Asia/Tokyo";

const state = {
  i18n: null,
  alt: ALT_LANGS[0],
  calls: new Map(),   // seq -> call; the dedupe key: a replayed or repeated push is shown once
  serving: new Map(), // counter -> {number, counter, department}: service started there
  absent: [],         // newest first: numbers called but not present (no-show)
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
function departmentName(key, lang = "ja") {
  const w = state.waits.find((x) => x.department === key);
  return w ? pick(w.name, lang) : key;
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
  conn.lang = "ja";
}

function renderHeader() {
  if (state.site) {
    document.getElementById("site-ja").textContent = pick(state.site, "ja");
    const alt = document.getElementById("site-alt");
    alt.textContent = pick(state.site, state.alt);
    setLang(alt, state.alt);
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
  const servingNow = new Set([...state.serving.values()].map((s) => s.number));
  const calling = [];
  const counters = new Set();
  const numbersNow = new Set();
  for (const c of calls) {
    // one card per counter: its latest call, while it is recent enough to matter
    if (counters.has(c.counter)) continue;
    counters.add(c.counter);
    if (!c.ended && now - c.at < HOLD_S && calling.length < MAX_CARDS && !numbersNow.has(c.number)
        && !servingNow.has(c.number)) {
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
    grid.style.gridTemplateRows = "";
    grid.replaceChildren(el("p", { class: "empty" }, ...label("board.none_called")));
  } else {
    // the newest card spans the width and is taller than the others
    const rows = Math.ceil((calling.length - 1) / 2);
    // (with three rows of older calls the newest gets only a little more: it stays legible at
    // 10 m and the others keep theirs — tests/web/test_board_layout.py)
    const first = rows >= 3 ? 1.1 : 1.4;
    grid.style.gridTemplateRows = rows ? `minmax(0, ${first}fr) repeat(${rows}, minmax(0, 1fr))` : "minmax(0, 1fr)";
    grid.replaceChildren(...calling.map((c, i) => {
      const isNew = now - c.at < NEW_S;
      const floor = showFloor() ? ` ・ ${t("board.floor_n", { n: c.floor })}` : "";
      return el("div", { class: `call-card${i === 0 ? " first" : ""}${isNew ? " new" : ""}${c.recall ? " recall" : ""}`,
        dataset: { seq: c.seq, number: c.number, counter: c.counter, department: c.department || "" } },
        el("div", { class: "card-in" },
          el("div", { class: "number" }, c.number),
          el("div", { class: "counter" }, t("board.counter_n", { n: c.counter })),
          el("div", { class: "meta" },
            el("span", { class: "counter-alt", lang: state.alt }, t("board.counter_n", { n: c.counter }, state.alt)),
            c.department ? el("span", { class: "dept" }, pick(c.department_name || {}, "ja") || departmentName(c.department), floor) : null,
            c.recall ? el("span", { class: "badge" }, t("board.recall"), " / ", el("span", { lang: state.alt }, t("board.recall", {}, state.alt))) : null)));
    }));
  }
  document.getElementById("recent").replaceChildren(...(recent.length ? recent.map((c) =>
    el("li", { dataset: { seq: c.seq, number: c.number } }, c.number, el("small", {}, t("board.counter_n", { n: c.counter }))))
    : [el("li", { class: "none" }, t("board.none_serving"))]));
  const shown = (x) => callShown({ ...x, floor: (state.counters.find((k) => k.number === x.counter) || {}).floor });
  const serving = [...state.serving.values()].filter(shown).sort((a, b) => a.counter - b.counter);
  document.getElementById("serving").replaceChildren(...(serving.length ? serving.map((c) =>
    el("li", { dataset: { number: c.number, counter: c.counter } }, c.number, el("small", {}, t("board.counter_n", { n: c.counter }))))
    : [el("li", { class: "none" }, t("board.none_serving"))]));
  const absent = state.absent.filter(shown).slice(0, 6);
  document.getElementById("absent").replaceChildren(...(absent.length ? absent.map((c) =>
    el("li", { dataset: { number: c.number } }, c.number))
    : [el("li", { class: "none" }, t("board.none_serving"))]));
}

/** The wait as every client words it (the server decides which: wait_kind, wait_low, wait_high). */
function waitText(w, lang) {
  const kind = w.wait_kind || (w.wait_minutes === null || w.wait_minutes === undefined ? "closed" : "minutes");
  if (kind === "closed") return t("board.unknown_wait", {}, lang);
  if (kind === "soon") return t("board.soon", {}, lang);
  if (w.wait_low !== null && w.wait_low !== undefined) return t("board.range", { lo: w.wait_low, hi: w.wait_high }, lang);
  return t("board.minutes", { n: Math.ceil(w.wait_minutes) }, lang);
}

function renderWaits() {
  const deps = shownDepartments();
  const rows = state.waits.filter((w) => !deps || deps.has(w.department));
  document.querySelector("#waits tbody").replaceChildren(...rows.map((w) => {
    const closed = w.wait_minutes === null || w.wait_minutes === undefined;
    return el("tr", { dataset: { department: w.department, kind: w.wait_kind || "" } },
      el("td", { class: "dept" }, ...labelName(w.name)),
      el("td", { class: "num" }, t("board.people", { n: w.waiting })),
      el("td", { class: `num${closed ? " closed" : ""}` }, el("span", { class: "ja" }, waitText(w, "ja")),
        w.wait_kind === "few_counters" ? el("span", { class: "why" }, t("board.few_counters")) : null,
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
// In arrival order, never overlapping. A single call plays its file (chime, Japanese, English).
// When calls queue up (a burst) the board plays one chime and then each call's short form
// 「12番の方、1番窓口へ」; a call whose citizen is already at the counter, or that is older than
// STALE_S when its turn comes, is shown but not spoken. docs/web.md gives the measured timing.
const queue = [];
let playing = false;

function enqueue(call) {
  queue.push(call);
  pump();
}

async function pump() {
  if (playing) return;
  playing = true;
  let burst = false;
  while (queue.length) {
    const call = queue.shift();
    const entry = logEntry(call);
    if (state.muted) { entry.skipped = "muted"; continue; }
    if (call.ended) { entry.skipped = "ended"; continue; }
    if (serverNow() - call.at > STALE_S) { entry.skipped = "stale"; continue; }
    if (!burst && queue.length && !call.recall) {
      burst = true;
      entry.chime = true;
      await chime();
    }
    const short = burst && !call.recall && call.audio_short;
    await announce(entry, short ? call.audio_short : call.audio, Boolean(short));
  }
  playing = false;
}

function logEntry(call) {
  const entry = { seq: call.seq, number: call.number, counter: call.counter, recall: call.recall, url: call.audio || null,
    queued: call.queuedAt, at: performance.now() };
  window.__announcements.push(entry);
  if (window.__announcements.length > 200) window.__announcements.shift();  // a board runs all day
  return entry;
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

async function announce(entry, url, short) {
  entry.url = url || null;
  entry.form = short ? "short" : "full";
  const blob = url ? await fetchWhenReady(url) : null;
  entry.bytes = blob ? blob.size : 0;
  entry.start = performance.now();
  entry.ok = blob ? await playBlob(blob) : (await chime(), false);
  entry.end = performance.now();
}

/** What a screen reader says: only the newest call, in a form that reads the two numbers apart. */
function speakText(call) {
  document.getElementById("speak").textContent =
    t(call.recall ? "board.spoken_recall" : "board.spoken", { number: call.number, counter: call.counter });
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
  if (announceIt && callShown(c) && serverNow() - c.at < FRESH_S) {
    c.queuedAt = performance.now();
    speakText(c);
    enqueue(c);
  }
  return true;
}

function onReady(result, resumedFrom) {
  state.offset = result.server_time - Date.now() / 1000;
  const board = result.snapshot.board;
  state.site = board.site_name;
  state.waits = board.waits;
  state.counters = board.counters;
  state.serving = new Map((board.serving || []).map((s) => [s.counter, s]));
  state.absent = board.absent || [];
  // the server could not replay what we missed (another database, or too long away): forget our
  // calls, whose seqs may be reused, and show the snapshot's history; nothing old is announced
  if (result.truncated) {
    state.calls.clear();
    resumedFrom = null;
  }
  // oldest first, so calls made while we were away are announced in their order; the replayed
  // pushes that follow carry the same seqs and are dropped as already seen
  for (const c of [...(board.recent_calls || [])].reverse()) addCall(c, resumedFrom !== null && c.seq > resumedFrom);
  // a call whose number is no longer called at its counter (served, absent, requeued) has ended
  const calledNow = new Set((board.called || []).map((c) => `${c.number}@${c.counter}`));
  for (const c of state.calls.values()) if (!calledNow.has(`${c.number}@${c.counter}`)) c.ended = true;
  render();
}

function onPush(msg) {
  if (msg.push === "call") {
    if (addCall(msg.data, true)) {
      state.serving.delete(msg.data.counter);
      renderCalls();
    }
  } else if (msg.push === "call_end") {
    // the number left "now calling" at that counter: service started, ended, requeued or absent
    const d = msg.data;
    for (const c of state.calls.values()) {
      if (c.number === d.number && c.counter === d.counter && c.seq < d.seq) c.ended = true;
    }
    if (d.reason === "started") state.serving.set(d.counter, { number: d.number, counter: d.counter });
    else if (state.serving.get(d.counter)?.number === d.number) state.serving.delete(d.counter);
    if (d.reason === "no_show") state.absent = [d, ...state.absent.filter((a) => a.number !== d.number)].slice(0, 8);
    renderCalls();
  } else if (msg.push === "waits") {
    state.waits = msg.data;
    renderWaits();
  }
}

function onState(s) {
  if (state.fatal) return;  // stopped for good: the banner keeps saying why
  document.body.dataset.conn = s;
  document.body.classList.toggle("offline", s === "offline");
  document.body.classList.toggle("connecting", s === "connecting");
  document.getElementById("offline").hidden = s !== "offline";
  if (state.i18n) renderLabels();
}

function onFatal(err) {
  // a wrong token will not get better by retrying: say so, instead of "reconnecting…" forever
  state.fatal = err.code === "bad_token" ? "conn.bad_token" : "conn.offline";
  document.body.dataset.conn = "stopped";
  document.body.classList.remove("connecting", "offline");
  document.body.classList.add("fatal");
  const banner = document.getElementById("offline");
  banner.hidden = false;
  document.getElementById("offline-title").dataset.label = state.fatal;
  document.getElementById("offline-detail").hidden = true;
  renderLabels();
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
    onReady, onPush, onState, onFatal,
  }).start();
}

function toggleMute() {
  state.muted = !state.muted;
  localStorage.setItem("madoguchi.board.mute", state.muted ? "1" : "0");
  if (state.muted) queue.length = 0;
  renderLabels();
}

main();
