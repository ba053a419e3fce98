// Admin page: a live view of every counter and queue (websocket pushes, role admin), today's KPIs
// and a date-range report. Every KPI comes from the server's /admin/api/kpi, which runs the same
// queue_server.kpi.report_for as `run.py kpi`; this page only formats (shares as %, minutes with
// units). The admin token is sent as a bearer header and kept for this browser tab only
// (sessionStorage); a printed URL's ?token= signs in and is then removed from the address bar.
import { Link } from "/board/common.js";

const T = {
  ja: {
    title: "窓口KPI（管理）", token: "管理トークン", sign_in: "表示", sign_out: "終了", site: "拠点",
    today: "本日（ライブ）", report: "期間の集計", from: "開始日", to: "終了日", show: "集計",
    xlsx: "Excel ダウンロード", csv: "CSV", none: "データなし", bad_token: "トークンが違います",
    updated: "更新", waits_today: "課別待ち時間（本日）", language: "言語",
    now: "いまの窓口と待ち行列", counters: "窓口", queues: "待ち行列", counter: "窓口", departments: "担当課",
    state: "状態", number: "番号", for: "経過", department: "課", waiting: "待ち人数", oldest: "最長待ち",
    estimate: "予測", open: "受付中", paused: "休止中", closed: "閉鎖", called: "呼出中", serving: "対応中",
    live: "リアルタイム更新中", offline: "接続が切れています。再接続中…", minutes: "{n}分", people: "{n}人",
    counter_n: "{n}番窓口", soon: "まもなく", bookings: "来庁予約",
    not_printed: "番号札未印刷（発券機で印刷できなかった番号。窓口端末から再印刷できます）：{numbers}",
  },
  en: {
    title: "Counter KPIs (admin)", token: "Admin token", sign_in: "Show", sign_out: "Sign out", site: "Site",
    today: "Today (live)", report: "Report for a period", from: "From", to: "To", show: "Show",
    xlsx: "Download Excel", csv: "CSV", none: "No data", bad_token: "Wrong token",
    updated: "Updated", waits_today: "Waits by department (today)", language: "Language",
    now: "Counters and queues now", counters: "Counters", queues: "Queues", counter: "Counter",
    departments: "Departments", state: "State", number: "Number", for: "For", department: "Department",
    waiting: "Waiting", oldest: "Longest wait", estimate: "Estimate", open: "Open", paused: "Paused",
    closed: "Closed", called: "Called", serving: "Serving", live: "Updating live",
    offline: "Connection lost. Reconnecting…", minutes: "{n} min", people: "{n}", counter_n: "Counter {n}",
    soon: "soon", bookings: "Bookings",
    not_printed: "Tickets not printed (a kiosk could not print them; a counter console can reprint them): {numbers}",
  },
};
let LANG = new URLSearchParams(location.search).get("lang") || localStorage.getItem("madoguchi.admin.lang") || "ja";
if (!(LANG in T)) LANG = "ja";
const t = (k, f = {}) => (T[LANG][k] ?? T.ja[k] ?? k).replace(/\{(\w+)\}/g, (m, x) => (x in f ? String(f[x]) : m));
const LIVE_KEYS = ["tickets", "visitors", "waits", "wait_mean", "wait_p90", "within_target", "no_shows",
  "counter_utilisation", "help_requests", "device_faults"];
const REFRESH_MS = 30000;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("madoguchi.admin") || "";
let timer = null;

function applyTexts() {
  document.documentElement.lang = LANG;
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
}
applyTexts();

function localToday() {
  // the site's day is Asia/Tokyo whatever the browser's zone
  return new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Tokyo" }).format(new Date());
}

export function fmt(value, unit) {
  if (value === null || value === undefined) return "-";
  if (unit === "比率") return `${(value * 100).toFixed(1)}%`;
  return typeof value === "number" ? String(value) : value;
}

async function api(params, asBlob = false) {
  const q = new URLSearchParams({ site: $("site").value || "", ...params });
  const r = await fetch(`/admin/api/kpi?${q}`, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  if (r.status === 401) throw new Error(t("bad_token"));
  if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  return asBlob ? r : r.json();
}

async function download(params) {
  const r = await api(params, true);
  const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "")?.[1] || "kpi";
  const url = URL.createObjectURL(await r.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function table(tb, key, range) {
  const el = document.createElement("table");
  el.dataset.table = key;
  const cap = el.createCaption();
  cap.textContent = tb.title;
  if (range) {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: t("csv") });
    b.onclick = () => download({ ...range, format: "csv", table: key }).catch(showRangeError);
    cap.append(b);
  }
  // staff read names, not internal keys: a key column is dropped where a name column exists
  const hasName = tb.columns.some((c) => c.key === "name");
  const keep = tb.columns.map((c, i) => [c, i]).filter(([c]) => !(hasName && c.key === "department"));
  const cols = key === "summary" ? tb.columns.slice(1) : keep.map(([c]) => c);
  const pickRow = (row) => (key === "summary" ? row.slice(1) : keep.map(([, i]) => row[i]));
  const head = el.createTHead().insertRow();
  for (const c of cols) {
    const th = document.createElement("th");
    th.textContent = c.unit && c.unit !== "比率" ? `${c.title}（${c.unit}）` : c.title;
    head.append(th);
  }
  const body = el.createTBody();
  if (!tb.rows.length) body.insertRow().insertCell().textContent = t("none");
  // a KPI list (key, name, value, unit: the overview, 来庁予約, 書かない窓口) has each row's unit
  const unitAt = tb.columns.findIndex((c) => c.key === "unit");
  const perRow = unitAt >= 0 && tb.columns.some((c) => c.key === "value");
  for (const row of tb.rows) {
    const tr = body.insertRow();
    const cells = pickRow(row);
    cols.forEach((c, i) => {
      const td = tr.insertCell();
      const unit = perRow && c.key === "value" ? row[unitAt] : c.unit;
      // a share is already shown as %: its unit column would only repeat it
      td.textContent = perRow && c.key === "unit" && cells[i] === "比率" ? "" : fmt(cells[i], unit);
      if (typeof cells[i] === "number") td.className = "num";
      td.dataset.value = cells[i] === null ? "" : String(cells[i]);
    });
  }
  return el;
}

async function refreshLive() {
  try {
    const rep = await api({});
    const s = rep.tables.summary;
    const cards = $("live-cards");
    cards.replaceChildren();
    for (const row of s.rows.filter((r) => LIVE_KEYS.includes(r[0]))) {
      const d = document.createElement("div");
      d.className = "card";
      d.dataset.kpi = row[0];
      d.innerHTML = `<div class="v"></div><div class="k"></div>`;
      d.querySelector(".v").textContent = fmt(row[2], row[3]) + (row[3] && row[3] !== "比率" ? ` ${row[3]}` : "");
      d.querySelector(".k").textContent = row[1];
      cards.append(d);
    }
    $("live-waits").replaceChildren(table({ ...rep.tables.waits, title: t("waits_today") }, "waits"));
    $("live-time").textContent = `${t("updated")} ${new Date().toLocaleTimeString("ja-JP", { timeZone: "Asia/Tokyo" })}`;
  } catch (e) {
    $("live-time").textContent = e.message;
  }
}

function showRangeError(e) { $("range-error").textContent = e.message; }

async function showRange(ev) {
  ev?.preventDefault();
  $("range-error").textContent = "";
  const range = { from: $("from").value, to: $("to").value };
  try {
    const rep = await api(range);
    const out = $("report");
    out.replaceChildren();
    for (const [key, tb] of Object.entries(rep.tables)) out.append(table(tb, key, range));
    $("xlsx").disabled = false;
    $("xlsx").onclick = () => download({ ...range, format: "xlsx" }).catch(showRangeError);
  } catch (e) {
    showRangeError(e);
  }
}

// ------------------------------------------------------------------ live view (pushes)
const live = { board: null, offset: 0, link: null, pending: null, names: {} };
window.__admin = live;

const pickName = (names, key) => (names && (names[LANG] || names.ja)) || key;

function since(at) {
  if (!at) return "";
  const sec = Math.max(0, Math.floor(Date.now() / 1000 + live.offset - at));
  return `${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, "0")}`;
}

function renderLive() {
  const b = live.board;
  if (!b) return;
  const names = Object.fromEntries((b.waits || []).map((w) => [w.department, w.name]));
  const at = new Map();
  for (const c of b.called || []) at.set(c.counter, { ...c, state: "called" });
  for (const c of b.serving || []) at.set(c.counter, { ...c, state: "serving" });
  $("counters-live").tBodies[0].replaceChildren(...(b.counters || []).map((c) => {
    const cur = at.get(c.number);
    const tr = document.createElement("tr");
    tr.dataset.counter = c.number;
    tr.className = c.state;
    for (const v of [t("counter_n", { n: c.number }), c.departments.map((d) => pickName(names[d], d)).join("・"),
      cur ? t(cur.state) : t(c.state), cur ? cur.number : "", cur ? since(cur.at) : ""]) {
      tr.insertCell().textContent = v;
    }
    tr.cells[4].className = "num timer";
    if (cur) tr.cells[4].dataset.at = cur.at;
    return tr;
  }));
  const oldest = Object.fromEntries((b.queues || []).map((q) => [q.department, q.oldest_minutes]));
  $("queues-live").tBodies[0].replaceChildren(...(b.waits || []).map((w) => {
    const tr = document.createElement("tr");
    tr.dataset.department = w.department;
    const est = w.wait_minutes === null || w.wait_minutes === undefined ? "-"
      : w.wait_kind === "soon" ? t("soon")
        : t("minutes", { n: w.wait_low !== null && w.wait_low !== undefined ? `${w.wait_low}–${w.wait_high}` : Math.ceil(w.wait_minutes) });
    for (const v of [pickName(w.name, w.department), String(w.waiting),
      oldest[w.department] === null || oldest[w.department] === undefined ? "-" : t("minutes", { n: Math.round(oldest[w.department]) }),
      est]) tr.insertCell().textContent = v;
    tr.cells[1].className = tr.cells[2].className = tr.cells[3].className = "num";
    return tr;
  }));
  const np = $("not-printed-live");
  np.hidden = !live.notPrinted?.length;
  np.textContent = np.hidden ? "" : t("not_printed", { numbers: live.notPrinted.join("、") });
  const opt = [...$("site").options].find((o) => o.value === b.site);
  if (opt) opt.textContent = pickName(b.site_name, b.site);
}

function renderState() {
  const s = live.state;
  $("now-state").textContent = s === "online" ? t("live") : s === "offline" ? t("offline") : s === "bad_token" ? t("bad_token") : "";
}

function tickLive() {
  for (const td of document.querySelectorAll("#counters-live td.timer[data-at]")) td.textContent = since(Number(td.dataset.at));
}

async function refreshBoard() {
  live.pending = null;
  try {
    const r = await live.link.request("snapshot");
    live.board = r.board;
    // open tickets whose print failed at a kiosk (queue_server/reprint.py)
    live.notPrinted = (r.tickets || []).filter((x) => x.not_printed && ["waiting", "called", "serving"].includes(x.state))
      .map((x) => x.number);
    renderLive();
  } catch (e) { /* offline: the next push or reconnect refreshes */ }
}

function connectLive() {
  if (live.link) live.link.stop?.();
  live.link = new Link({
    hello: () => ({ role: "admin", token, site: $("site").value || undefined, device: "admin-page" }),
    onReady: (result) => {
      live.offset = result.server_time - Date.now() / 1000;
      live.board = result.snapshot.board;
      renderLive();
      refreshBoard();  // the tickets too (which did not print)
    },
    // every committed event reaches the admin role: refresh the view, at most every 0.3 s
    onPush: () => { if (!live.pending) live.pending = setTimeout(refreshBoard, 300); },
    onState: (s) => { live.state = s; renderState(); },
    onFatal: () => { live.state = "bad_token"; renderState(); },
  }).start();
}

async function start() {
  const health = await (await fetch("/healthz", { cache: "no-store" })).json();
  const sel = $("site");
  sel.replaceChildren(...Object.keys(health.sites).map((k) => Object.assign(document.createElement("option"), { value: k, textContent: k })));
  const today = localToday();
  $("from").value ||= today.slice(0, 8) + "01";
  $("to").value ||= today;
  try {
    await api({});
  } catch (e) {
    $("signin-error").textContent = e.message;
    return;
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  connectLive();
  await refreshLive();
  clearInterval(timer);
  timer = setInterval(refreshLive, REFRESH_MS);
  setInterval(tickLive, 1000);
  sel.onchange = () => { connectLive(); refreshLive(); if ($("report").childElementCount) showRange(); };
}

// a URL printed by `run.py demo` carries the token: sign in with it, then drop it from the address
// bar (and from the history) so it is not left on screen or in a bookmark
{
  const q = new URLSearchParams(location.search);
  if (q.get("token")) {
    token = q.get("token");
    sessionStorage.setItem("madoguchi.admin", token);
    q.delete("token");
    history.replaceState(null, "", location.pathname + (q.toString() ? `?${q}` : ""));
  }
}
$("lang").value = LANG;
$("lang").addEventListener("change", () => {
  LANG = $("lang").value;
  localStorage.setItem("madoguchi.admin.lang", LANG);
  applyTexts();
  renderLive();
  renderState();
  refreshLive();  // the KPI names themselves come from the server in Japanese (docs/kpi.md)
});

$("signin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("madoguchi.admin", token);
  start();
});
$("signout").addEventListener("click", () => {
  sessionStorage.removeItem("madoguchi.admin");
  location.reload();
});
$("range-form").addEventListener("submit", showRange);
if (token) start();
