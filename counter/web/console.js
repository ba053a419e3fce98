// Staff counter console. Query: site, counter, token (may be typed instead), lang (default ja).
// Buttons and single-letter shortcuts for every action; the card prefill of the ticket at this
// counter is shown here and nowhere else (it comes only from the `current` request).
import { I18n, Link, el, htmlLang, params, pick } from "/board/common.js";

const LANG = params.get("lang") || "ja";
const SITE = params.get("site") || undefined;
const COUNTER = Number(params.get("counter"));

const S = {
  i18n: null,
  catalogue: { procedures: {}, documents: {} },
  link: null,
  counter: null,        // {number, departments, floor, state}
  departments: {},      // key -> names
  queue: [],            // the queue in call order, as shown (derived from entries at render time)
  entries: new Map(),   // ticket id -> entry, kept by the `queue` pushes (docs/protocol.md, "Queue feed")
  queueSeq: null,       // the seq the entries hold at; null while a resync is awaited
  current: null,        // staff view of the ticket at this counter (+ prefill)
  next: null,           // after complete: where the ticket goes now
  alerts: [],
  selected: 0,          // index into the queue for keyboard calling
  staff: "",
  busy: false,
  policy: null,         // {max_recalls} from the server
  offset: 0,            // server clock minus ours, seconds (the timers)
  notPrinted: [],       // tickets whose print failed at a kiosk: {ticket, number, device, code, at}
  kiosks: [],           // the site's connected kiosks when last heard: {device, printer: "ok" | error code}
  reprints: {},         // reprint jobs this console asked for: job -> reply
  outcomes: {},         // print outcomes of jobs not (yet) known as ours: job -> push data
  answerWithin: 30000,  // ms: a kiosk that has not answered a reprint by then is named (tests shorten it)
};
window.__console = S;

const t = (key, fields = {}) => S.i18n.t(key, LANG, fields);
const $ = (id) => document.getElementById(id);
const procName = (id) => pick(S.catalogue.procedures[id]?.name, LANG) || id;
const deptName = (key) => pick(S.departments[key], LANG) || key;

function applyTexts(root = document) {
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
}

// ------------------------------------------------------------------ rendering
function renderHeader() {
  $("counter-title").textContent = `${t("console.title")} — ${t("board.counter_n", { n: COUNTER })}`;
  if (S.counter) {
    $("counter-departments").textContent = S.counter.departments.map(deptName).join("・");
    const pill = $("counter-state");
    pill.textContent = t(`counter.${S.counter.state}`);
    pill.className = `pill ${S.counter.state}`;
  }
  $("staff-label").textContent = t("console.staff", { staff: S.staff });
}

const ACTION_LABEL = { pause: () => (S.counter?.state === "open" ? "action.pause" : "action.resume") };

/** Which actions the server accepts now: the preconditions of queue_server/core/transitions.py and
 * lobby.set_counter, with max_recalls from the server's policy (snapshot). */
export function allowedActions(counter, step, policy) {
  const open = counter?.state === "open";
  const called = step?.state === "called";
  return {
    call_next: open && !step,
    recall: called,
    start: called,
    complete: step?.state === "serving",
    transfer: !!step,
    add_procedure: !!step,
    no_show: called && step.recalls >= (policy?.max_recalls ?? 2),
    requeue: called,
    pause: !step,
  };
}

function renderActions() {
  const cur = S.current;
  const step = cur && cur.steps.find((s) => s.counter === COUNTER && (s.state === "called" || s.state === "serving"));
  const enabled = allowedActions(S.counter, step, S.policy);
  for (const b of document.querySelectorAll("#actions button")) {
    const a = b.dataset.action;
    const key = (ACTION_LABEL[a] || (() => `action.${a}`))();
    b.replaceChildren(el("kbd", {}, b.dataset.key.toUpperCase()), t(key));
    b.disabled = !enabled[a] || S.link?.state !== "online";
    // why 不在 is not yet possible: the recalls the policy asks for first
    const missing = a === "no_show" && step?.state === "called" ? (S.policy?.max_recalls ?? 2) - step.recalls : 0;
    if (missing > 0) b.title = t("console.no_show_after", { n: missing });
    else b.removeAttribute("title");
  }
}

// ------------------------------------------------------------------ the queue feed
// The server sends entries that do not change with the clock; the order, the marks and the
// minutes waited are computed here at render time: queue_server/core/queue_feed.py (step_key,
// shown), itself dispatch.dispatch_key. A test compares this order with the server's.
const nowServer = () => Date.now() / 1000 + S.offset;

export function stepKey(e, s, now, policy) {
  const booked = e.reserved_for;
  if (booked !== null && booked !== undefined && now >= booked - policy.reservation_grace) return [0, -1, booked, e.issued_at, e.n];
  if (now - s.since >= policy.aging_bound) return [0, 0, s.since, e.issued_at, e.n];
  return [1, e.assistance ? -1 : 0, s.since, e.issued_at, e.n];
}

function cmpKey(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** The entries in call order at `now`, each as the console shows it (queue_feed.order + shown). */
export function queueOrder(entries, now, policy) {
  const rows = [];
  for (const e of entries) {
    let best = e.steps[0];
    let key = stepKey(e, best, now, policy);
    for (const s of e.steps.slice(1)) {
      const k = stepKey(e, s, now, policy);
      if (cmpKey(k, key) < 0) { best = s; key = k; }
    }
    const due = e.reserved_for !== null && e.reserved_for !== undefined && now >= e.reserved_for - policy.reservation_grace;
    rows.push({ key, row: {
      ticket: e.ticket, number: e.number, department: best.department, step: best.step, procedures: best.procedures,
      waited_minutes: Math.round((now - best.since) / 6) / 10,
      priority: due ? "reservation" : e.assistance ? "assistance" : null,
      escalated: now - best.since >= policy.aging_bound } });
  }
  rows.sort((a, b) => cmpKey(a.key, b.key));
  return rows.map((r) => r.row);
}

function derive() {
  S.queue = queueOrder(S.entries.values(), nowServer(), S.policy);
}

/** A `queue` push or the hello's queue: a full snapshot, or a delta that continues our view.
 * A delta starting after the seq we hold means we missed one: ask for a resync. */
function onQueue(seq, data) {
  if (data.full) {
    S.entries = new Map(data.entries.map((e) => [e.ticket, e]));
    S.queueSeq = seq;
  } else if (S.queueSeq === null || seq <= S.queueSeq) {
    return;  // a resync is on its way, or our view already holds this delta
  } else if (data.from > S.queueSeq) {
    resync();
    return;
  } else {
    for (const id of data.removed) S.entries.delete(id);
    for (const e of data.entries) S.entries.set(e.ticket, e);
    S.queueSeq = seq;
  }
  derive();
  renderQueue();
}

async function resync() {
  S.queueSeq = null;
  try {
    await S.link.request("resync");
  } catch (err) {
    // offline: the reconnect's hello brings a snapshot; refused (busy …): ask again shortly
    if (err.code !== "offline") setTimeout(() => { if (S.queueSeq === null && S.link) resync(); }, 2000);
  }
}

function renderQueue() {
  $("queue-count").textContent = t("board.people", { n: S.queue.length });
  if (!S.queue.length) {
    $("queue").replaceChildren(el("li", { class: "empty" }, t("console.queue_empty")));
    return;
  }
  S.selected = Math.min(S.selected, S.queue.length - 1);
  $("queue").replaceChildren(...S.queue.map((q, i) => el("li", { class: i === S.selected ? "selected" : "", dataset: { ticket: q.ticket, number: q.number } },
    el("span", { class: "num" }, q.number),
    el("span", { class: "what" },
      q.priority ? el("span", { class: `mark ${q.priority}` }, t(`console.${q.priority}`)) : null,
      q.escalated ? el("span", { class: "mark escalated" }, t("console.escalated")) : null,
      deptName(q.department), " ", t("console.waited", { n: Math.round(q.waited_minutes) }),
      el("small", {}, q.procedures.map(procName).join("、"))),
    el("button", { type: "button", onclick: () => act("call", { ticket: q.ticket }), disabled: !!S.current || S.counter?.state !== "open" }, t("action.call")))));
}

function fmtDate(s) {
  return /^\d{8}$/.test(s) ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6)}` : s;
}

function renderCurrent() {
  const box = $("current");
  const cur = S.current;
  const nextBox = S.next ? el("p", { class: "next", id: "next" }, S.next.length
    ? t("console.next_to", { places: S.next.map((n) => pick(n.name, LANG)).join("、") })
    : t("console.visit_done")) : null;
  if (!cur) {
    box.replaceChildren(...[nextBox, el("p", { class: "empty" }, t("console.no_current"))].filter(Boolean));
    return;
  }
  const here = cur.steps.find((s) => s.counter === COUNTER && (s.state === "called" || s.state === "serving"));
  const docs = new Set();
  for (const p of here ? here.procedures : []) for (const d of S.catalogue.procedures[p]?.documents || []) docs.add(d);
  const prefill = cur.prefill;
  box.replaceChildren(
    el("div", { class: "ticket-head" },
      el("span", { class: "ticket-number", id: "current-number" }, cur.number),
      here ? el("span", { class: `ticket-state ${here.state}`, id: "current-state" }, t(`state.${here.state}`)) : null,
      here && here.recalls ? el("span", {}, t("console.recalls", { n: here.recalls })) : null,
      here ? el("span", { class: "timer", id: "current-timer" }, timerText(here)) : null,
      cur.assistance ? el("span", { class: "mark assistance" }, t("console.assistance")) : null,
      cur.reserved_for ? el("span", { class: "mark reservation" }, t("console.reservation")) : null,
      cur.not_printed ? el("span", { class: "mark not-printed", id: "current-not-printed" }, t("console.not_printed")) : null,
      reprintButton(cur.id, "reprint-current")),
    // the card data first: it is what staff copy into forms
    el("h3", {}, t("console.prefill")),
    prefill
      ? el("div", { class: "prefill", id: "prefill" },
        el("dl", {}, ["name", "address", "birth_date", "sex"].filter((k) => prefill[k]).flatMap((k) => [
          el("dt", {}, t(`field.${k}`)),
          el("dd", {}, k === "sex" ? t(`sex.${prefill[k]}`) : k === "birth_date" ? fmtDate(prefill[k]) : prefill[k])])),
        el("p", {}, t("console.prefill_note")))
      : el("p", { class: "empty" }, t("console.no_prefill")),
    docs.size ? el("h3", {}, t("console.documents")) : null,
    docs.size ? el("ul", { class: "docs" }, [...docs].map((d) => el("li", {}, pick(S.catalogue.documents[d], LANG) || d))) : null,
    el("h3", {}, t("console.plan")),
    el("ol", { class: "steps" }, cur.steps.map((s) => el("li", { class: s === here ? "here" : s.state },
      el("span", { class: "st" }, t(`state.${s.state}`)),
      el("span", { class: "dept" }, deptName(s.department)),
      el("div", { class: "procs" }, s.procedures.map(procName).join("、"))))));
}

/** How long the ticket has been called (waiting for the citizen) or served: m:ss. */
function timerText(step) {
  const since = step.state === "serving" ? step.started_at : step.called_at;
  if (!since) return "";
  const sec = Math.max(0, Math.floor(Date.now() / 1000 + S.offset - since));
  const mmss = `${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, "0")}`;
  return t(step.state === "serving" ? "console.since_started" : "console.since_called", { t: mmss });
}

function tick() {
  const node = $("current-timer");
  const here = S.current?.steps.find((s) => s.counter === COUNTER && (s.state === "called" || s.state === "serving"));
  if (node && here) {
    node.textContent = timerText(here);
    // a citizen called long ago and not come: the timer says so in colour
    node.classList.toggle("long", here.state === "called" && Date.now() / 1000 + S.offset - here.called_at > 180);
  }
}

function renderAlerts() {
  if (!S.alerts.length) {
    $("alerts").replaceChildren(el("li", { class: "empty" }, t("console.no_alerts")));
    return;
  }
  $("alerts").replaceChildren(...S.alerts.map((a, i) => el("li", { class: `${a.kind}${a.fresh ? " fresh" : ""}` },
    el("button", { type: "button", onclick: () => dismiss(i) }, t("action.dismiss")),
    el("time", {}, new Date(a.at * 1000).toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" })),
    a.kind === "fault" ? t("alert.fault", a) : t("alert.help", a),
    a.reason ? el("div", {}, a.reason) : null)));
}

// dismissed alerts stay dismissed on this PC across reconnects (the snapshot repeats the day's alerts)
const DISMISSED = "madoguchi.console.dismissed";
const alertKey = (a) => `${a.device}|${a.at}`;
function dismissed() {
  try { return new Set(JSON.parse(localStorage.getItem(DISMISSED) || "[]")); } catch (e) { return new Set(); }
}
function dismiss(i) {
  const keys = dismissed();
  keys.add(alertKey(S.alerts[i]));
  localStorage.setItem(DISMISSED, JSON.stringify([...keys].slice(-200)));
  S.alerts.splice(i, 1);
  renderAlerts();
}

function render() {
  renderHeader();
  renderActions();
  renderQueue();
  renderCurrent();
  renderAlerts();
  renderNotPrinted();
}

function say(text, kind = "ok") {
  const m = $("message");
  m.textContent = text;
  m.className = `message ${kind}`;
}

function errorText(err) {
  const key = `error.${err.code}`;
  return key in S.i18n.table ? t(key) : t("error.generic", { code: err.code, message: err.message || "" });
}

// ------------------------------------------------------------------ actions
async function refreshCurrent() {
  try {
    S.current = (await S.link.request("current")).ticket;
  } catch (err) { say(errorText(err), "error"); }
}

// Calls and completions carry an idempotency key: a retry (after a busy answer, in Link.request)
// is the same request, and the server returns its first reply if it was done after all.
const KEYED = new Set(["call_next", "call", "complete"]);
let keySeq = 0;
const newKey = () => `c${COUNTER}-${Date.now().toString(36)}-${(keySeq++).toString(36)}`;

async function act(type, body = {}) {
  if (S.busy) return;
  S.busy = true;
  try {
    if (type === "pause") type = S.counter.state === "open" ? "pause" : "open";
    if (type === "open") body = { staff: S.staff, ...body };
    if (KEYED.has(type)) body = { ...body, idempotency_key: newKey() };
    const result = await S.link.request(type, body);
    if (result.counter) S.counter = result.counter;
    if ("ticket" in result) {
      if (type === "call_next" || type === "call") S.next = null;
      if (type === "complete") S.next = result.next;
      // the ticket leaves this counter on complete, transfer, no-show and requeue
      if (["complete", "transfer", "no_show", "requeue"].includes(type) || !result.ticket) S.current = null;
      else await refreshCurrent();
    }
    say(type === "call_next" && !result.ticket ? t("console.queue_empty") : `${t(`action.${type === "open" ? "resume" : type}`)} ✓`);
  } catch (err) {
    say(errorText(err), "error");
  } finally {
    S.busy = false;
    render();
  }
}

function openTransfer() {
  const sel = $("transfer-department");
  const here = S.current?.steps.find((s) => s.counter === COUNTER)?.department;
  sel.replaceChildren(...Object.keys(S.departments).filter((d) => d !== here).map((d) => el("option", { value: d }, deptName(d))));
  const dlg = $("transfer-dialog");
  dlg.returnValue = "";
  dlg.showModal();
  sel.focus();
}

function fillProcedures() {
  const dep = $("add-department").value;
  const procs = Object.entries(S.catalogue.procedures).filter(([, p]) => p.department === dep);
  $("add-procedure").replaceChildren(...procs.map(([id, p]) => el("option", { value: id }, pick(p.name, LANG))));
  fillMinutes();
}
function fillMinutes() {
  const p = S.catalogue.procedures[$("add-procedure").value];
  $("add-minutes").value = p ? Math.round(p.minutes) : "";
}

function openAdd() {
  const sel = $("add-department");
  sel.replaceChildren(...Object.keys(S.departments).map((d) => el("option", { value: d }, deptName(d))));
  fillProcedures();
  const dlg = $("add-dialog");
  dlg.returnValue = "";
  dlg.showModal();
  sel.focus();
}

const ACTIONS = {
  call_next: () => act("call_next"),
  recall: () => act("recall"),
  start: () => act("start"),
  complete: () => act("complete"),
  transfer: openTransfer,
  add_procedure: openAdd,
  no_show: () => act("no_show"),
  requeue: () => act("requeue"),
  pause: () => act("pause"),
};

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector("dialog[open]") || $("app").hidden) return;
  if (["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName)) return;
  const key = e.key.toLowerCase();
  const button = document.querySelector(`#actions button[data-key="${key}"]`);
  if (button) {
    e.preventDefault();
    if (!button.disabled) ACTIONS[button.dataset.action]();
    return;
  }
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    S.selected = Math.max(0, Math.min(S.queue.length - 1, S.selected + (e.key === "ArrowDown" ? 1 : -1)));
    renderQueue();
  } else if (e.key === "Enter" && document.activeElement === document.body && S.queue[S.selected] && !S.current) {
    e.preventDefault();
    act("call", { ticket: S.queue[S.selected].ticket });
  }
}

// ------------------------------------------------------------------ tickets that did not print
// A kiosk reports a ticket whose print failed (printer offline, out of paper, cover open …);
// 「番号札を再印刷」 sends it to the kiosk that issued it (or another connected one) and the
// kiosk's answer comes back as a `print` push (queue_server/reprint.py).
const printReason = (code) => t(`print.${code}` in S.i18n.table ? `print.${code}` : "print.printer_error");

function reprintButton(ticket, id) {
  return el("button", { type: "button", class: "reprint", id, dataset: { ticket },
    disabled: !!S.reprinting || S.link?.state !== "online", onclick: () => reprint(ticket) }, t("console.reprint"));
}

function renderNotPrinted() {
  $("not-printed").hidden = !S.notPrinted.length;
  renderKioskChoice();
  $("not-printed-list").replaceChildren(...S.notPrinted.map((x) => el("li", { class: "fault", dataset: { ticket: x.ticket } },
    el("span", {}, el("span", { class: "num" }, x.number), " ",
      t("console.not_printed_item", { device: x.device, reason: printReason(x.code) })),
    reprintButton(x.ticket))));
}

/** Where a reprint goes: "automatic" (the server picks the issuing kiosk, or one whose printer
 * works: queue_server/reprint.py), or a kiosk staff name (one whose printer they just mended). */
function renderKioskChoice() {
  const select = $("reprint-kiosk");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, t("console.reprint_on_auto")),
    ...S.kiosks.map((k) => el("option", { value: k.device },
      k.printer === "ok" ? k.device : t("console.kiosk_printer_failed", { device: k.device, reason: printReason(k.printer) }))));
  select.value = S.kiosks.some((k) => k.device === chosen) ? chosen : "";
}

function kioskPrinter(device, printed, code) {
  const k = S.kiosks.find((x) => x.device === device);
  if (k) k.printer = printed ? "ok" : (code || "printer_error");
}

async function reprint(ticket) {
  if (S.reprinting) return;
  S.reprinting = true;
  render();
  try {
    // one key per press: should the request be sent twice, it prints once (the server keeps the first reply)
    const key = `rp-${COUNTER}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const kiosk = $("reprint-kiosk").value;
    const r = await S.link.request("reprint", { ticket, idempotency_key: key, ...(kiosk ? { kiosk } : {}) });
    S.reprints[r.job] = r;
    if (r.kiosks) S.kiosks = r.kiosks;
    const why = { printer: "console.reprint_elsewhere", offline: "console.reprint_fallback" }[r.why];
    say(t(why || "console.reprint_sent", { ...r, reason: printReason(r.printer_code) }));
    if (S.outcomes[r.job]) sayOutcome(S.outcomes[r.job]);  // the kiosk answered before the reply came
    // a kiosk that went away with the job (or hangs) never answers: say so, the answer may still come
    setTimeout(() => { if (S.reprints[r.job]) say(t("console.reprint_no_answer", r), "error"); }, S.answerWithin);
  } catch (err) {
    say(errorText(err), "error");
  } finally {
    S.reprinting = false;
    render();
  }
}

function onPrint(d) {
  kioskPrinter(d.device, d.printed, d.code);
  S.notPrinted = S.notPrinted.filter((x) => x.ticket !== d.ticket);
  if (!d.printed) S.notPrinted.push({ ticket: d.ticket, number: d.number, device: d.device, code: d.code, at: d.at });
  if (S.current && S.current.id === d.ticket) S.current.not_printed = !d.printed;
  if (S.reprints[d.job]) sayOutcome(d);
  else if (d.job) {  // another console's job, or ours answered before its reply reached us
    S.outcomes[d.job] = d;
    for (const old of Object.keys(S.outcomes).slice(0, -20)) delete S.outcomes[old];
  }
  renderCurrent();
  renderNotPrinted();
}

/** The outcome of a reprint this console asked for, on the message line. */
function sayOutcome(d) {
  delete S.reprints[d.job];
  delete S.outcomes[d.job];
  say(t(d.printed ? "console.reprinted" : "console.reprint_failed", { ...d, reason: printReason(d.code) }),
    d.printed ? "ok" : "error");
}

// ------------------------------------------------------------------ connection
function onReady(result) {
  const snap = result.snapshot;
  S.offset = (result.server_time ?? Date.now() / 1000) - Date.now() / 1000;
  S.policy = snap.policy || null;
  S.counter = snap.counter;
  S.departments = snap.departments;
  S.entries = new Map();
  onQueue(snap.queue.seq, snap.queue);
  S.current = snap.current;
  // help alerts of the day stay in the snapshot; show the last few, newest first
  const gone = dismissed();
  S.alerts = (snap.help || []).filter((a) => !gone.has(alertKey(a))).slice(-5).reverse();
  $("signin").hidden = true;
  $("app").hidden = false;
  renderStorage(result.storage);
  if (S.current) refreshCurrent().then(render);
  if (S.openOnReady) {
    S.openOnReady = false;
    act("open");
  }
  render();
}

// "tickets cannot be saved — call IT": the server's storage fails (disk full, locked …); every
// change would be refused until it is fixed, so say so once, plainly, instead of per action
function renderStorage(st) {
  let banner = $("storage");
  if (!banner) {
    banner = el("div", { id: "storage", class: "offline-banner", role: "alert", hidden: true });
    $("offline").after(banner);
  }
  banner.hidden = !st || st.ok;
  if (st && !st.ok) banner.textContent = `${t("conn.storage_failing")} ${t(`storage.${st.cause}`)}`;
}

function onPush(msg) {
  if (msg.push === "storage") {
    renderStorage(msg.data);
  } else if (msg.push === "queue") {
    onQueue(msg.seq, msg.data);
  } else if (msg.push === "kiosks") {
    S.kiosks = msg.data;
    renderKioskChoice();
  } else if (msg.push === "help") {
    S.alerts.unshift({ ...msg.data, fresh: true });
    renderAlerts();
    beep();
    setTimeout(() => { for (const a of S.alerts) a.fresh = false; }, 4000);
  }
}

function onState(s) {
  $("conn").textContent = t(`conn.${s}`);
  $("offline").hidden = s !== "offline";
  if (S.counter) renderActions();
}

function onFatal(err) {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = errorText(err);
  S.link = null;
}

let audioCtx = null;
function beep() {
  try {
    audioCtx = audioCtx || new AudioContext();
    const o = audioCtx.createOscillator();
    const g = audioCtx.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.2, audioCtx.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, audioCtx.currentTime + 0.4);
    o.connect(g).connect(audioCtx.destination);
    o.start();
    o.stop(audioCtx.currentTime + 0.4);
  } catch (e) { /* no sound device */ }
}

async function signIn(e) {
  e.preventDefault();
  await loaded;  // typed before the texts were in: it signs in as soon as they are
  S.staff = $("staff").value.trim();
  const token = $("token").value.trim();
  if (!S.staff || !token) return;
  localStorage.setItem("madoguchi.console.staff", S.staff);
  // 書かない窓口: the forms of the ticket at this counter open in their own tab (counter/forms_web)
  $("forms-link").href = `/forms/?${new URLSearchParams({ site: SITE || "", counter: COUNTER, token, staff: S.staff, lang: LANG })}`;
  $("signin-error").textContent = "";
  if (S.link) S.link.stop();
  // signing in opens the counter; a later reconnect does not (a paused counter stays paused)
  S.openOnReady = true;
  S.link = new Link({
    hello: () => ({ role: "counter", site: SITE, counter: COUNTER, token, staff: S.staff }),
    onReady: (result) => {
      S.notPrinted = result.snapshot.not_printed || [];
      S.kiosks = result.snapshot.kiosks || [];
      onReady(result);
    },
    onPush: (msg) => (msg.push === "print" ? onPrint(msg.data) : onPush(msg)),
    onState, onFatal,
  }).start();
  S.link.onBusy = () => say(t("console.busy_retry"), "error");  // Link.request sends it again itself
}

function signOut() {
  if (S.link) S.link.stop();
  S.link = null;
  $("app").hidden = true;
  $("signin").hidden = false;
}

async function load() {
  [S.i18n, S.catalogue] = await Promise.all([
    I18n.load("/board/messages.json"),
    fetch("/catalogue.json").then((r) => r.json()).catch(() => ({ procedures: {}, documents: {} })),
  ]);
  document.documentElement.lang = htmlLang(LANG);
  applyTexts();
  $("signin-counter").textContent = t("board.counter_n", { n: COUNTER });
  $("signout").addEventListener("click", signOut);
  for (const b of document.querySelectorAll("#actions button")) b.addEventListener("click", () => ACTIONS[b.dataset.action]());
  $("transfer-dialog").addEventListener("close", () => {
    if ($("transfer-dialog").returnValue === "ok") act("transfer", { department: $("transfer-department").value });
  });
  $("add-department").addEventListener("change", fillProcedures);
  $("add-procedure").addEventListener("change", fillMinutes);
  $("add-dialog").addEventListener("close", () => {
    if ($("add-dialog").returnValue !== "ok") return;
    const minutes = Number($("add-minutes").value);
    act("add_procedure", { department: $("add-department").value, procedures: [$("add-procedure").value],
      ...(minutes > 0 ? { minutes } : {}) });
  });
  for (const dlg of document.querySelectorAll("dialog")) {
    // Enter confirms from any field (the form's implicit submit would pick the first button: cancel)
    dlg.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); if (dlg.querySelector("form").reportValidity()) dlg.close("ok"); }
    });
  }
  document.addEventListener("keydown", onKey);
  setInterval(tick, 1000);  // the called / serving timer
  // minutes waited and the aging order move with the clock alone, not with pushes
  setInterval(() => { if (S.policy && !$("app").hidden) { derive(); renderQueue(); } }, 15000);
}

// The sign-in works from the first moment, before the texts and the catalogue are in: Enter pressed
// early (a fast clerk, a slow network) used to do nothing at all. The button is disabled in the HTML
// until the handler is on, so the form's native submit (name and token in the address) never runs.
$("staff").value ||= localStorage.getItem("madoguchi.console.staff") || "";
$("token").value ||= params.get("token") || "";
$("signin").addEventListener("submit", signIn);
$("signin-button").disabled = false;
($("staff").value ? $("token").value ? $("signin-button") : $("token") : $("staff")).focus();
const loaded = load();
