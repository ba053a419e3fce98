// Admin page: today's live KPIs and a date-range report. Every number comes from the server's
// /admin/api/kpi, which runs the same queue_server.kpi.report_for as `run.py kpi`; this page only
// formats (shares as %, minutes with units). The admin token is sent as a bearer header, never
// in a URL, and kept for this browser tab only (sessionStorage).

const T = {
  ja: {
    title: "窓口KPI（管理）", token: "管理トークン", sign_in: "表示", sign_out: "終了", site: "拠点",
    today: "本日（ライブ）", report: "期間の集計", from: "開始日", to: "終了日", show: "集計",
    xlsx: "Excel ダウンロード", csv: "CSV", none: "データなし", bad_token: "トークンが違います",
    updated: "更新", waits_today: "課別待ち時間（本日）",
  },
};
const t = (k) => T.ja[k] ?? k;
const LIVE_KEYS = ["tickets", "visitors", "waits", "wait_mean", "wait_p90", "within_target", "no_shows",
  "counter_utilisation", "help_requests", "device_faults"];
const REFRESH_MS = 30000;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("madoguchi.admin") || "";
let timer = null;

document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });

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
  const cols = key === "summary" ? tb.columns.slice(1) : tb.columns;
  const head = el.createTHead().insertRow();
  for (const c of cols) {
    const th = document.createElement("th");
    th.textContent = c.unit && c.unit !== "比率" ? `${c.title}（${c.unit}）` : c.title;
    head.append(th);
  }
  const body = el.createTBody();
  if (!tb.rows.length) body.insertRow().insertCell().textContent = t("none");
  for (const row of tb.rows) {
    const tr = body.insertRow();
    const cells = key === "summary" ? row.slice(1) : row;
    cols.forEach((c, i) => {
      const td = tr.insertCell();
      const unit = key === "summary" && c.key === "value" ? row[3] : c.unit;
      // a share is already shown as %: its unit column would only repeat it
      td.textContent = key === "summary" && c.key === "unit" && cells[i] === "比率" ? "" : fmt(cells[i], unit);
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
  await refreshLive();
  clearInterval(timer);
  timer = setInterval(refreshLive, REFRESH_MS);
  sel.onchange = () => { refreshLive(); if ($("report").childElementCount) showRange(); };
}

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
