// Consultation pages for staff (相談): sign in as a person, record that a consultation happened,
// search the index, create and take over handover sheets (つなぐシート), read the audit log (admins).
// Query: lang (default ja), site, ticket (a called ticket number: opens its handovers at once),
// counter (the consultant's counter: when it calls a ticket, that ticket's handovers open by themselves).
// The session token lives in sessionStorage only (this tab; gone when the tab closes), never in a
// cookie, so another site's page cannot act with it; the server also checks the page's Origin.
import { I18n, Link, el, params, pick } from "/board/common.js";

const LANG = params.get("lang") || "ja";
const SITE = params.get("site") || undefined;
const SESSION = "madoguchi.consult.session";

// A hello the server refuses for good (page served from another origin, consultations not configured)
// is shown instead of retrying forever; the shared Link knows only the device roles' fatal codes.
class StaffLink extends Link {
  request(type, body = {}) {
    const p = super.request(type, body);
    if (type === "hello") {
      p.catch((err) => {
        if (err && ["bad_origin", "not_configured"].includes(err.code)) {
          this.stopped = true;
          if (this.onFatal) this.onFatal(err);
          if (this.ws) this.ws.close();
        }
      });
    }
    return p;
  }
}

const S = { i18n: null, link: null, me: null, options: null, consultation: null, tab: "record" };
window.__consult = S;

const t = (key, fields = {}) => S.i18n.t(key, LANG, fields);
const $ = (id) => document.getElementById(id);
const dept = (k) => pick(S.options?.departments[k], LANG) || k;
const topic = (k) => pick(S.options?.topics[k], LANG) || k;

function applyTexts(root = document) {
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
}

function say(text, kind = "ok") {
  const m = $("message");
  m.textContent = text;
  m.className = `message ${kind}`;
}

function errorText(err) {
  const key = `error.${err.code}`;
  if (err.code === "slow_down") return t(key, { n: err.retry_after || 1 });
  return key in S.i18n.table ? t(key) : t("error.generic", { code: err.code });
}

async function call(type, body = {}) {
  try {
    return await S.link.request(type, body);
  } catch (err) {
    if (err.code === "session_expired" || err.code === "sign_in_required") showSignIn(errorText(err));
    else say(errorText(err), "error");
    throw err;
  }
}

// ------------------------------------------------------------------ sign-in
function showSignIn(reason = "") {
  S.me = null;
  sessionStorage.removeItem(SESSION);
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = reason;
  $("identifier").focus();
}

async function signIn(e) {
  e.preventDefault();
  $("signin-error").textContent = "";
  try {
    const r = await S.link.request("sign_in", { identifier: $("identifier").value.trim(), password: $("password").value });
    sessionStorage.setItem(SESSION, r.session);
    $("password").value = "";
    await enter(r.staff);
  } catch (err) {
    $("password").value = "";
    $("signin-error").textContent = errorText(err);
  }
}

async function signOut() {
  try { await S.link.request("sign_out"); } catch (e) { /* already gone */ }
  showSignIn();
}

async function enter(me) {
  S.me = me;
  S.options = await call("options");
  $("signin").hidden = true;
  $("app").hidden = false;
  $("me").textContent = t("c.me", { name: me.name, role: t(`role.${me.role}`),
    departments: me.departments.map(dept).join("・") || "—" });
  fillSelect($("r-department"), me.departments, dept);
  fillSelect($("r-topic"), Object.keys(S.options.topics), topic);
  fillBookForm();
  const tabs = { record: me.role !== "admin", search: me.role !== "admin", handovers: me.role !== "admin",
    bookings: me.role !== "admin", audit: S.options.may_audit, kpi: S.options.may_kpi };
  for (const b of document.querySelectorAll("#tabs button")) b.hidden = !tabs[b.dataset.tab];
  const first = params.get("ticket") && tabs.handovers ? "handovers" : Object.keys(tabs).find((k) => tabs[k]);
  showTab(first);
  if (first === "handovers" && params.get("ticket")) {
    $("t-number").value = params.get("ticket");
    showHandovers(params.get("ticket"));
  } else if (first === "handovers") {
    showHandovers(null);
  } else if (first === "audit") {
    showAudit();
  }
  const today = new Date(Date.now() + 9 * 3600 * 1000).toISOString().slice(0, 10);  // the city's date (JST)
  $("k-to").value = today;
  $("k-from").value = `${today.slice(0, 8)}01`;
}

function fillSelect(sel, keys, label) {
  sel.replaceChildren(...keys.map((k) => el("option", { value: k }, label(k))));
}

function showTab(name) {
  S.tab = name;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const sec of document.querySelectorAll(".tab")) sec.hidden = sec.id !== `tab-${name}`;
}

// ------------------------------------------------------------------ record and hand over
async function record(e) {
  e.preventDefault();
  const r = await call("record", {
    citizen: { name: $("r-name").value, birth_date: $("r-birth").value },
    department: $("r-department").value, topic: $("r-topic").value, consent: $("r-consent").checked,
  });
  S.consultation = { id: r.id, consent: $("r-consent").checked };
  say(t("c.recorded"));
  const others = Object.keys(S.options.departments).filter((k) => !S.me.departments.includes(k));
  fillSelect($("h-to"), others, dept);
  $("handover-form").hidden = false;
  $("h-asked").focus();
}

async function handover(e) {
  e.preventDefault();
  const body = {
    consultation: S.consultation.id, to_department: $("h-to").value, asked: $("h-asked").value,
    done: $("h-done").value, needed: $("h-needed").value,
    documents: $("h-documents").value.split(/[,、，]/).map((s) => s.trim()).filter(Boolean),
  };
  if ($("h-ticket").value.trim()) body.ticket = $("h-ticket").value.trim();
  await call("handover_create", body);
  say(t("c.handover_created", { department: dept(body.to_department) }));
  $("handover-form").reset();
  $("handover-form").hidden = true;
  $("record-form").reset();
}

// ------------------------------------------------------------------ search
async function search(e) {
  e.preventDefault();
  const box = $("search-result");
  box.replaceChildren();
  const r = await call("search", { citizen: { name: $("s-name").value, birth_date: $("s-birth").value }, reason: $("s-reason").value });
  if (!r.records.length) {
    box.replaceChildren(el("p", { class: "empty", id: "search-empty" }, t("c.not_found")));
    return;
  }
  box.replaceChildren(el("table", { class: "list", id: "search-table" },
    el("thead", {}, el("tr", {}, ["c.when", "c.department", "c.consultant", "c.topic", "c.status", "c.consent_col"].map((k) => el("th", {}, t(k))))),
    el("tbody", {}, r.records.map((x) => el("tr", {},
      el("td", {}, x.day), el("td", {}, dept(x.department)), el("td", {}, x.consultant), el("td", {}, topic(x.topic)),
      el("td", {}, t(`status.${x.status}`)), el("td", {}, x.consent ? t("c.yes") : t("c.no")))))));
}

// ------------------------------------------------------------------ handovers
function sheetView(h) {
  const docs = h.documents.length ? h.documents.join("、") : "—";
  return el("article", { class: `sheet ${h.status}`, dataset: { id: h.id } },
    el("h3", {}, t("c.sheet_head", { from: dept(h.from_department), to: dept(h.to_department) }),
      h.ticket ? ` — ${t("c.ticket_n", { n: h.ticket })}` : ""),
    el("dl", {},
      el("dt", {}, t("c.sheet_asked")), el("dd", {}, h.asked),
      el("dt", {}, t("c.sheet_done")), el("dd", {}, h.done || "—"),
      el("dt", {}, t("c.sheet_needed")), el("dd", {}, h.needed),
      el("dt", {}, t("c.sheet_documents")), el("dd", {}, docs),
      el("dt", {}, t("c.created")), el("dd", {}, `${h.created} ${h.created_by}`)),
    h.status === "open" && (S.me.role === "general" || S.me.departments.includes(h.to_department))
      ? el("button", { type: "button", class: "primary take", onclick: () => takeOver(h.id) }, t("c.take_over"))
      : el("p", { class: "note" }, t(`handover.${h.status}`)));
}

async function showHandovers(number) {
  const r = await call("handovers", number ? { ticket: number } : {});
  const box = $("handover-list");
  box.replaceChildren(r.handovers.length ? el("div", {}, r.handovers.map(sheetView))
    : el("p", { class: "empty", id: "handovers-empty" }, t(number ? "c.no_handover_ticket" : "c.no_handover")));
}

async function takeOver(id) {
  await call("take_over", { handover: id });
  say(t("c.taken"));
  const n = $("t-number").value.trim();
  showHandovers(n || null);
}

// when the consultant's counter calls a citizen, show the handovers for that ticket (read once per call)
const COUNTER = params.get("counter") ? Number(params.get("counter")) : null;
let lastCalled = null;
async function watchCounter() {
  if (COUNTER === null || !S.me || S.me.role === "admin" || S.link?.state !== "online") return;
  try {
    const r = await S.link.request("called", { counter: COUNTER });
    if (r.ticket && r.ticket !== lastCalled) {
      showTab("handovers");
      $("t-number").value = r.ticket;
      await showHandovers(r.ticket);
    }
    lastCalled = r.ticket;
  } catch (err) {
    if (err.code === "session_expired") showSignIn(errorText(err));
  }
}

// ------------------------------------------------------------------ consultation bookings (相談の予約)
const mode = (m) => t(`mode.${m}`);

async function showBookings() {
  const r = await call("consult_bookings");
  $("booking-list").replaceChildren(r.bookings.length ? el("table", { class: "list", id: "booking-table" },
    el("thead", {}, el("tr", {}, ["c.when", "c.department", "c.topic", "c.mode", "c.consultant", "c.code", "c.status"].map((k) => el("th", {}, t(k))))),
    el("tbody", {}, r.bookings.map((x) => el("tr", { dataset: { code: x.code } },
      el("td", {}, `${x.day} ${x.start}–${x.end}`), el("td", {}, dept(x.department)), el("td", {}, topic(x.topic)),
      el("td", {}, mode(x.mode)), el("td", {}, x.consultant), el("td", {}, x.code), el("td", {}, t(`booking.${x.state}`))))))
    : el("p", { class: "empty", id: "bookings-empty" }, t("c.no_bookings")));
}

function fillBookForm() {
  const topics = Object.keys(S.options.topics);
  fillSelect($("b-topic"), topics, topic);
  fillSelect($("b-mode"), ["in_person", "online"], mode);
}

async function showSlots(e) {
  if (e) e.preventDefault();
  const body = { topic: $("b-topic").value, mode: $("b-mode").value };
  $("book-slots").replaceChildren();
  const r = await call("consult_slots", body);
  $("book-slots").replaceChildren(...r.days.filter((d) => d.slots.length).map((d) => el("div", { class: "slot-day" }, el("strong", {}, d.day), " ",
    d.slots.map((x) => el("button", { type: "button", class: "slot", disabled: x.free <= 0, dataset: { day: d.day, start: x.start },
      onclick: () => bookSlot({ ...body, day: d.day, start: x.start }).catch(() => {}) }, x.start)))));
}

async function bookSlot(body) {
  const r = await call("consult_book", body);
  const b = r.booking;
  say(t("c.booked", { code: b.code, day: b.day, time: new Date(b.slot_start * 1000).toLocaleTimeString("ja-JP",
    { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Tokyo" }) }));
  await showBookings();
  await showSlots();
}

// ------------------------------------------------------------------ audit
async function showAudit() {
  const r = await call("audit", { limit: 200 });
  $("audit-list").replaceChildren(el("table", { class: "list", id: "audit-table" },
    el("thead", {}, el("tr", {}, ["c.when", "c.who", "c.action", "c.record_col", "c.reason_col", "c.outcome"].map((k) => el("th", {}, t(k))))),
    el("tbody", {}, r.entries.map((x) => el("tr", {},
      el("td", {}, x.when), el("td", {}, x.actor), el("td", {}, t(`action.${x.action}`)),
      el("td", {}, x.record_kind ? `${known("kind", x.record_kind)} ${x.record_id.slice(0, 8)}` : ""),
      el("td", {}, known("reason", x.reason)), el("td", {}, outcome(x.outcome)))))));
}

// audit rows carry codes (and staff-typed reasons): show the code's text where the table has one
const known = (prefix, code) => (`${prefix}.${code}` in S.i18n.table ? t(`${prefix}.${code}`) : code);
function outcome(code) {
  const m = /^(shown|rows):(\d+)$/.exec(code);
  if (m) return t(`outcome.${m[1]}`, { n: m[2] });
  return code in (S.options?.departments || {}) ? dept(code) : known("outcome", code);
}

// ------------------------------------------------------------------ KPIs (aggregates only)
async function showKpi(e) {
  if (e) e.preventDefault();
  const k = await call("kpi", { from: $("k-from").value, to: $("k-to").value });
  const h = k.handovers;
  const num = (v) => (v === null || v === undefined ? "—" : String(v));
  const rows = [
    ["c.kpi_consultations", k.consultations], ["c.kpi_citizens", k.citizens],
    ["c.kpi_repeat", k.repeat_citizens], ["c.kpi_multi", k.multi_department_citizens],
    ["c.kpi_handovers", h.created], ["c.kpi_taken", h.taken], ["c.kpi_open", h.open],
    ["c.kpi_hours_median", num(h.hours_to_take_over_median)], ["c.kpi_hours_p90", num(h.hours_to_take_over_p90)],
  ];
  $("kpi-result").replaceChildren(
    el("table", { class: "list", id: "kpi-table" }, el("tbody", {}, rows.map(([key, v]) => el("tr", {}, el("th", {}, t(key)), el("td", {}, v))))),
    el("h3", {}, t("c.kpi_by_department")),
    el("table", { class: "list", id: "kpi-departments" },
      el("thead", {}, el("tr", {}, ["c.department", "c.kpi_consultations", "c.kpi_consent_share"].map((x) => el("th", {}, t(x))))),
      el("tbody", {}, Object.entries(k.departments).map(([d, v]) => el("tr", {},
        el("td", {}, dept(d)), el("td", {}, v.consultations), el("td", {}, `${Math.round(v.consent_share * 100)}%`))))),
    el("h3", {}, t("c.kpi_desks")),
    el("table", { class: "list", id: "kpi-desks" },
      el("thead", {}, el("tr", {}, ["c.department", "c.kpi_booked_online", "c.kpi_booked_in_person", "c.kpi_booked_cancelled",
        "c.kpi_walk_ins", "c.kpi_wait_booked", "c.kpi_wait_walk_in"].map((x) => el("th", {}, t(x))))),
      el("tbody", {}, Object.entries(k.desks || {}).map(([d, v]) => el("tr", { dataset: { desk: d } },
        el("td", {}, dept(d)), el("td", {}, v.booked_online), el("td", {}, v.booked_in_person), el("td", {}, v.cancelled),
        el("td", {}, v.walk_ins), el("td", {}, `${num(v.wait_booked_median)} / ${num(v.wait_booked_p90)}`),
        el("td", {}, `${num(v.wait_walk_in_median)} / ${num(v.wait_walk_in_p90)}`))))),
    el("h3", {}, t("c.kpi_routes")),
    el("table", { class: "list", id: "kpi-routes" }, el("tbody", {}, h.routes.map((r) => el("tr", {},
      el("td", {}, t("c.sheet_head", { from: dept(r.from), to: dept(r.to) })), el("td", {}, r.count))))));
}

// ------------------------------------------------------------------ connection
async function onReady(result) {
  if (result.staff) {
    await enter(result.staff);
  } else {
    showSignIn(result.session_error ? errorText({ code: result.session_error }) : "");
  }
}

function onState(s) {
  $("conn").textContent = t(`conn.${s}`);
}

function onFatal(err) {
  showSignIn(errorText(err));
}

async function main() {
  S.i18n = await I18n.load("/consult/messages.json");
  document.documentElement.lang = LANG;
  applyTexts();
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("record-form").addEventListener("submit", (e) => record(e).catch(() => {}));
  $("handover-form").addEventListener("submit", (e) => handover(e).catch(() => {}));
  $("search-form").addEventListener("submit", (e) => search(e).catch(() => {}));
  $("ticket-form").addEventListener("submit", (e) => { e.preventDefault(); showHandovers($("t-number").value.trim() || null).catch(() => {}); });
  $("inbox").addEventListener("click", () => { $("t-number").value = ""; showHandovers(null).catch(() => {}); });
  $("audit-refresh").addEventListener("click", () => showAudit().catch(() => {}));
  $("bookings-refresh").addEventListener("click", () => showBookings().catch(() => {}));
  $("book-form").addEventListener("submit", (e) => showSlots(e).catch(() => {}));
  $("kpi-form").addEventListener("submit", (e) => showKpi(e).catch(() => {}));
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => {
      showTab(b.dataset.tab);
      if (b.dataset.tab === "audit") showAudit().catch(() => {});
      if (b.dataset.tab === "kpi") showKpi().catch(() => {});
      if (b.dataset.tab === "bookings") showBookings().catch(() => {});
      if (b.dataset.tab === "handovers") showHandovers($("t-number").value.trim() || null).catch(() => {});
    });
  }
  setInterval(watchCounter, 3000);
  // every (re)connect presents the tab's session; the server says whether it still lives
  S.link = new StaffLink({
    hello: () => ({ role: "staff", site: SITE, session: sessionStorage.getItem(SESSION) || undefined }),
    onReady, onState, onFatal,
  }).start();
}

main();
