// Admin: a day's 来庁予約 with each booking's procedure list (to prepare forms the day before),
// its state, the capacity per slot, and cancelling a booking. Staff-only page, Japanese only,
// like the KPI page. The admin token goes in the websocket hello, never in a URL.
import { Link, el } from "/board/common.js";

const T = {
  title: "来庁予約（管理）", token: "管理トークン", sign_in: "表示", site: "拠点", day: "日付", kpi: "窓口KPI",
  print: "印刷", time: "時間", code: "予約番号", state: "状態", purposes: "目的", procedures: "手続き（課ごと）",
  documents: "持ち物", cancel: "取消", confirm: "予約 {code} を取り消しますか", none: "この日の予約はありません",
  summary: "予約 {n} 件（予約済み {booked}・受付済み {checked_in}・取消 {cancelled}・来庁なし {no_show}）",
  capacity: "受付枠：{slot}分ごと、{caps}", bad_token: "トークンが違います",
  booked: "予約済み", checked_in: "受付済み", cancelled: "取消", no_show: "来庁なし",
};
const t = (k, f = {}) => (T[k] ?? k).replace(/\{(\w+)\}/g, (m, x) => (x in f ? String(f[x]) : m));
const $ = (id) => document.getElementById(id);
const S = { token: sessionStorage.getItem("madoguchi.admin") || "", link: null, names: {}, data: null };
window.__bookings = S;
document.querySelectorAll("[data-t]").forEach((e) => { e.textContent = t(e.dataset.t); });

function today() {
  return new Intl.DateTimeFormat("sv-SE", { timeZone: "Asia/Tokyo" }).format(new Date());
}

async function load() {
  $("error").textContent = "";
  try {
    S.data = await S.link.request("reservations", { day: $("day").value });
  } catch (e) {
    $("error").textContent = e.message || e.code;
    return;
  }
  render();
}

function render() {
  const d = S.data;
  const c = d.counts;
  $("summary").textContent = t("summary", { n: d.reservations.length, booked: c.booked || 0, checked_in: c.checked_in || 0,
    cancelled: c.cancelled || 0, no_show: c.no_show || 0 });
  const caps = Object.entries(d.capacity).map(([k, n]) => `${S.names[k] || k} ${n}`).join("、");
  $("capacity").textContent = t("capacity", { slot: d.slot_minutes, caps });
  const body = $("bookings").tBodies[0];
  if (!d.reservations.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 7 }, t("none"))));
    return;
  }
  body.replaceChildren(...d.reservations.map((r) => el("tr", { class: r.state, dataset: { code: r.code } },
    el("td", {}, r.start), el("td", {}, r.code), el("td", { class: "state" }, t(r.state)),
    el("td", {}, (r.purpose_names || r.purposes).join("、")),
    el("td", {}, el("ul", {}, (r.procedures || []).map((s) => el("li", {}, `${s.department_name}：${s.procedures.join("、")}`)))),
    el("td", {}, el("ul", {}, [...new Set((r.procedures || []).flatMap((s) => s.documents))].map((x) => el("li", {}, x)))),
    el("td", {}, r.state === "booked" ? el("button", { type: "button", class: "cancel", onclick: () => cancel(r.code) }, t("cancel")) : ""))));
}

async function cancel(code) {
  if (!window.confirm(t("confirm", { code }))) return;
  try {
    await S.link.request("cancel_booking", { code });
  } catch (e) {
    $("error").textContent = e.message || e.code;
  }
  load();
}

async function start() {
  const health = await (await fetch("/healthz", { cache: "no-store" })).json();
  const sites = Object.keys(health.sites);
  $("site").replaceChildren(...sites.map((k) => el("option", { value: k }, k)));
  $("site").value = new URLSearchParams(location.search).get("site") || sites[0];
  $("day").value = new URLSearchParams(location.search).get("day") || today();
  connect();
}

function connect() {
  if (S.link) S.link.stop();
  S.link = new Link({
    hello: () => ({ role: "admin", token: S.token, site: $("site").value, device: "bookings" }),
    onReady: (result) => {
      const names = result.snapshot?.board?.waits || [];
      for (const w of names) S.names[w.department] = w.name?.ja || w.department;
      $("signin").hidden = true;
      $("app").hidden = false;
      load();
    },
    onFatal: () => { $("signin").hidden = false; $("signin-error").textContent = t("bad_token"); },
  }).start();
}

$("signin").addEventListener("submit", (ev) => {
  ev.preventDefault();
  S.token = $("token").value.trim();
  sessionStorage.setItem("madoguchi.admin", S.token);
  start();
});
$("site").addEventListener("change", connect);
$("day").addEventListener("change", load);
$("print").addEventListener("click", () => window.print());
if (S.token) start();
