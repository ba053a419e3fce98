// The public planning page (/plan/): plan a visit at home, see when to come, book a slot.
// No sign-in, no framework: the server's planner role answers over the websocket with the same
// pure planner and catalogue as the kiosk. Nothing personal is asked or kept (docs/planning.md).
import { I18n, LANGS, Link, el, params, pick, pickMarked } from "/plan/common.js";

const S = { i18n: null, lang: "ja", link: null, snap: null, site: params.get("site") || undefined,
  purposes: [], answers: {}, view: "events", result: null, forecast: null, slots: null, day: null,
  chosen: null, booking: null, replaces: null, error: null, multi: [], consult: null, cslots: null };
window.__plan = S;
const $ = (id) => document.getElementById(id);
const t = (key, fields = {}) => S.i18n.t(key, S.lang, fields);
const tag = () => (S.lang === "ja-easy" ? "ja" : S.lang);
const TZ = "Asia/Tokyo";

/** Catalogue text with {base|reading} ruby markup as nodes (queue_server/core/ruby.py, same pattern). */
function ruby(text) {
  const out = [];
  const re = /\{([^{}|]+)\|([^{}|]+)\}/g;
  let pos = 0;
  let m;
  text = text || "";
  while ((m = re.exec(text))) {
    if (m.index > pos) out.push(text.slice(pos, m.index));
    out.push(el("ruby", {}, m[1], el("rt", {}, m[2])));
    pos = re.lastIndex;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

function dayLabel(iso) {
  const d = new Date(`${iso}T12:00:00+09:00`);
  return new Intl.DateTimeFormat(tag(), { month: "numeric", day: "numeric", weekday: "short", timeZone: TZ }).format(d);
}

function clock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: TZ });
}

function showError(err) {
  S.error = err ? (S.i18n.table[`err.${err.code}`] ? t(`err.${err.code}`) : t("err.generic", { code: err.code || "?" })) : null;
  $("error").hidden = !S.error;
  $("error").textContent = S.error || "";
  $("error").dataset.code = err ? err.code : "";
}

async function ask(type, body, keepError = false) {
  if (!keepError) showError(null);
  try {
    await online;  // the websocket opens after the first paint: a fast first click waits for it
    return await S.link.request(type, body);
  } catch (err) {
    showError(err);
    throw err;
  }
}

function planBody() {
  return { purposes: S.purposes, answers: S.answers, lang: S.lang };
}

// ------------------------------------------------------------------ flow
async function replan() {
  S.result = await ask("plan", planBody());
  S.multi = [];
  if (S.result.question) { S.view = "question"; render(); return; }
  S.view = S.booking ? "booked" : "list";
  render();
  loadExtras();
}

async function loadExtras() {
  // when to come and free slots: both read-only, shown below the list
  const body = { purposes: S.purposes, answers: S.answers };
  // (keepError: a "slot full" refresh must leave the message saying why the table changed)
  try { S.forecast = await ask("forecast", body, true); } catch (e) { S.forecast = null; }
  try { S.slots = await ask("slots", body, true); } catch (e) { S.slots = null; }
  if (S.slots && !S.day) S.day = (S.slots.days.find((d) => d.slots.some((s) => s.free > 0)) || S.slots.days[0] || {}).day;
  render();
}

function answer(value) {
  S.answers = { ...S.answers, [S.result.question.id]: String(value) };
  replan();
}

function back() {
  const keys = Object.keys(S.answers);
  if (S.view === "question" && keys.length) {
    const rest = { ...S.answers };
    delete rest[keys[keys.length - 1]];
    S.answers = rest;
    replan();
    return;
  }
  S.view = "events";
  S.answers = {};
  render();
}

async function book() {
  const body = { day: S.chosen.day, start: S.chosen.start, ...planBody() };
  if (S.replaces) body.replaces = S.replaces;
  try {
    const r = await ask("book", body);
    S.booking = r.booking;
    S.replaces = null;
    S.view = "booked";
    history.replaceState(null, "", `?site=${S.booking.site}&b=${S.booking.code}&lang=${S.lang}`);
  } catch (err) {
    if (err.code === "slot_full" || err.code === "slot_past") { S.chosen = null; loadExtras(); }
  }
  render();
}

// 相談の予約: topic → in person / online → slot → code (docs/consultation.md, "Booking")
function consultTopic(key) {
  return (S.snap.consult.topics || []).find((x) => x.key === key);
}

async function loadConsultSlots(keepError = false) {
  try {
    S.cslots = await ask("consult_slots", { topic: S.consult.topic, mode: S.consult.mode }, keepError);
  } catch (e) { S.cslots = null; }
  if (S.cslots && !(S.cslots.days.find((d) => d.day === S.day))) {
    S.day = (S.cslots.days.find((d) => d.slots.some((x) => x.free > 0)) || S.cslots.days[0] || {}).day;
  }
  render();
}

async function consultBook() {
  try {
    const r = await ask("consult_book", { day: S.chosen.day, start: S.chosen.start, topic: S.consult.topic,
      mode: S.consult.mode, lang: S.lang });
    S.booking = r.booking;
    S.result = null;
    S.view = "booked";
    history.replaceState(null, "", `?site=${S.booking.site}&b=${S.booking.code}&lang=${S.lang}`);
  } catch (err) {
    if (err.code === "slot_full" || err.code === "slot_past") { S.chosen = null; loadConsultSlots(true); }
  }
  render();
}

async function cancelBooking() {
  const r = await ask("cancel_booking", { code: S.booking.code });
  S.booking = r.booking;
  render();
}

function listUrl() {
  const a = Object.entries(S.answers).map(([k, v]) => `${k}:${v}`).join(";");
  const q = new URLSearchParams({ site: S.snap.site_key, p: S.purposes.join(","), a });
  return `${location.origin}/plan/?${q}`;
}

function bookingUrl(b) {
  // purposes and answers too: the kiosk shows the list before the number without asking again
  const a = Object.entries(b.answers || {}).map(([k, v]) => `${k}:${v}`).join(";");
  const q = new URLSearchParams({ site: b.site, b: b.code, p: b.purposes.join(","), a });
  return `${location.origin}/plan/?${q}`;
}

function qr(text, id) {
  return el("img", { class: "qr", id, alt: "QR", src: `/plan/qr.svg?t=${encodeURIComponent(text)}` });
}

// ------------------------------------------------------------------ views
function render() {
  document.documentElement.lang = S.lang;
  document.title = t("title");
  $("title").textContent = t("title");
  $("lead").textContent = t("lead");
  $("lang-label").textContent = t("language");
  $("privacy").textContent = t("privacy");
  if (S.snap) $("site").textContent = pick(S.snap.site_name, S.lang);
  if (S.error) showError({ code: $("error").dataset.code });
  const v = $("view");
  if (v.dataset.view !== S.view) window.scrollTo(0, 0);  // a new step starts at its top
  v.dataset.view = S.view;
  if (!S.snap) return;
  const views = { events: viewEvents, question: viewQuestion, list: viewList, booked: viewBooked,
    consult: viewConsult, loading: () => [] };
  v.replaceChildren(...views[S.view]());
}

function viewEvents() {
  const items = S.snap.purposes.map((p) => {
    const on = S.purposes.includes(p.id);
    return el("label", { class: `choice${on ? " on" : ""}`, dataset: { purpose: p.id } },
      el("input", { type: "checkbox", checked: on, onchange: () => {
        S.purposes = on ? S.purposes.filter((x) => x !== p.id) : [...S.purposes, p.id];
        render();
      } }), el("span", {}, ...ruby(pickMarked(p.name, S.lang))));
  });
  // branch offices (総合支所) have their own counters and slots: choosing one reloads the page for it
  const sites = S.snap.sites.length > 1 ? el("label", { class: "row" }, `${t("site")}: `,
    el("select", { id: "site-pick", onchange: (e) => { location.search = `?site=${e.target.value}&lang=${S.lang}`; } },
      S.snap.sites.map((x) => el("option", { value: x.key, selected: x.key === S.site }, pick(x.name, S.lang))))) : null;
  return [sites, el("section", {}, el("h2", {}, t("events_title")), el("p", { class: "hint" }, t("events_hint")),
    el("div", { class: "choices" }, items),
    // 相談 chosen: its booking (topic, in person / online, consultant's slot) is offered right here
    S.purposes.includes("consultation") ? consultEntry("main") : null,
    el("button", { class: S.purposes.includes("consultation") ? "alt" : "main", id: "next", disabled: !S.purposes.length, onclick: () => { S.answers = {}; replan(); } }, t("next"))),
  S.purposes.includes("consultation") ? null : consultEntry("alt")].filter(Boolean);
}

function consultEntry(cls) {
  if (!S.snap.consult || !S.snap.consult.topics.length) return null;
  return el(cls === "main" ? "p" : "section", { id: "consult-entry" }, el("button", { class: cls, id: "consult-start", onclick: () => {
    S.consult = { topic: null, mode: null }; S.cslots = null; S.chosen = null; S.view = "consult"; render();
  } }, t("consult_start")));
}

function viewConsult() {
  const c = S.consult;
  const head = el("h2", {}, t("consult_title"));
  const backBtn = el("button", { class: "alt", id: "back", onclick: () => {
    if (c.mode) { c.mode = null; S.chosen = null; } else if (c.topic) c.topic = null; else S.view = "events";
    render();
  } }, t("back"));
  if (!c.topic) {
    return [el("section", {}, head, el("p", { class: "big" }, t("consult_topic")),
      el("div", { class: "choices" }, S.snap.consult.topics.map((x) => el("button", { class: "choice", dataset: { topic: x.key },
        onclick: () => { c.topic = x.key; render(); } }, pick(x.name, S.lang))))), backBtn];
  }
  const topic = consultTopic(c.topic);
  if (!c.mode) {
    return [el("section", {}, head, el("p", { class: "meta" }, pick(topic.name, S.lang)), el("p", { class: "big" }, t("consult_mode")),
      el("div", { class: "choices" }, topic.modes.map((m) => el("button", { class: "choice", dataset: { mode: m },
        onclick: () => { c.mode = m; S.cslots = null; S.chosen = null; loadConsultSlots(); } }, t(`mode_${m}`))))), backBtn];
  }
  const s = S.cslots;
  const label = t("consult_booked_as", { topic: pick(topic.name, S.lang), mode: t(`mode_${c.mode}`) });
  if (!s) return [el("section", {}, head, el("p", { class: "meta" }, label)), backBtn];
  const day = s.days.find((d) => d.day === S.day) || s.days[0];
  if (!day) return [el("section", {}, head, el("p", {}, t("consult_none"))), backBtn];
  return [el("section", { id: "book" }, head, el("p", { class: "meta", id: "consult-choice" }, label),
    el("p", { class: "hint" }, t("consult_slots_hint")),
    el("select", { id: "day", onchange: (e) => { S.day = e.target.value; S.chosen = null; render(); } },
      s.days.map((d) => el("option", { value: d.day, selected: d.day === day.day }, dayLabel(d.day)))),
    el("div", { class: "slots" }, day.slots.map((x) => el("button", {
      class: `slot${S.chosen && S.chosen.day === day.day && S.chosen.start === x.start ? " on" : ""}`,
      disabled: x.free <= 0, dataset: { start: x.start },
      onclick: () => { S.chosen = { day: day.day, start: x.start }; render(); } },
    x.start, el("small", {}, x.free > 0 ? t("free_n", { n: x.free }) : t("full"))))),
    S.chosen ? el("button", { class: "main", id: "book-now", onclick: consultBook },
      t("confirm_book", { day: dayLabel(S.chosen.day), time: S.chosen.start })) : null), backBtn];
}

function viewQuestion() {
  const q = S.result.question;
  const pr = S.result.progress;
  const body = [el("p", { class: "progress" }, t("question_n", { n: pr.asked, left: pr.at_most_left })),
    el("h2", { id: "question", dataset: { id: q.id } }, ...ruby(q.text))];
  if (q.help) body.push(el("p", { class: "qhelp" }, ...ruby(q.help)));
  const unknown = q.choices[q.choices.length - 1];
  if (q.kind === "number") {
    const input = el("input", { type: "number", id: "number", min: q.min, max: q.max, inputmode: "numeric", placeholder: t("number_hint") });
    body.push(el("div", { class: "row" }, input,
      el("button", { class: "alt", id: "number-ok", onclick: () => {
        const n = parseInt(input.value, 10);
        if (Number.isNaN(n) || (q.min !== null && n < q.min) || (q.max !== null && n > q.max)) {
          showError({ code: "out_of_range" });
          $("error").textContent = t("out_of_range", { min: q.min, max: q.max });
          return;
        }
        answer(n);
      } }, t("ok"))));
    body.push(el("div", { class: "choices" }, el("button", { class: "choice", dataset: { value: unknown.value }, onclick: () => answer(unknown.value) }, ...ruby(unknown.text))));
  } else if (q.kind === "multi") {
    body.push(el("div", { class: "choices" }, q.choices.slice(0, -1).map((c) => {
      const on = S.multi.includes(c.value);
      return el("label", { class: `choice${on ? " on" : ""}`, dataset: { value: c.value } },
        el("input", { type: "checkbox", checked: on, onchange: () => {
          S.multi = on ? S.multi.filter((x) => x !== c.value) : [...S.multi, c.value];
          render();
        } }), el("span", {}, ...ruby(c.text)));
    }), el("button", { class: "choice", dataset: { value: unknown.value }, onclick: () => answer(unknown.value) }, ...ruby(unknown.text))));
    body.push(el("button", { class: "main", id: "multi-ok", disabled: !S.multi.length, onclick: () => answer(S.multi.join(",")) }, t("ok")));
  } else {
    body.push(el("div", { class: "choices" }, q.choices.map((c) =>
      el("button", { class: "choice", dataset: { value: c.value }, onclick: () => answer(c.value) }, ...ruby(c.text)))));
  }
  return [el("section", {}, ...body), el("button", { class: "alt", id: "back", onclick: back }, t("back"))];
}

function procedureList(plan) {
  const parts = [];
  for (const s of plan.steps) {
    parts.push(el("div", { class: "dept", dataset: { department: s.department } },
      el("h3", {}, `${s.index + 1}. `, ...ruby(s.department_name)),
      s.procedures.map((p) => el("div", { class: "proc", dataset: { procedure: p.id } },
        el("div", { class: "name" }, ...ruby(p.name), p.to_confirm ? el("span", { class: "badge" }, t("to_confirm")) : null),
        p.deadline ? el("p", { class: "meta" }, t("deadline", { text: "" }), ...ruby(p.deadline)) : null,
        p.note ? el("p", { class: "meta" }, ...ruby(p.note)) : null,
        p.documents.length ? el("p", { class: "meta" }, `${t("bring")}: `, p.documents.flatMap((d, i) => [i ? "、" : "", ...ruby(d.name)])) : null))));
  }
  const out = [el("section", { id: "list" }, el("h2", {}, t("list_title")), ...parts)];
  if (plan.documents.length) {
    out.push(el("section", { id: "documents" }, el("h2", {}, t("bring")),
      el("ul", { class: "docs" }, plan.documents.map((d) => el("li", {}, ...ruby(d.name))))));
  }
  if (plan.online.length) {
    const procs = plan.steps.flatMap((s) => s.procedures);
    const all = procs.length && procs.every((p) => p.alternative);
    out.push(el("section", { id: "online" }, el("h2", {}, t("alt_title")),
      plan.online.map((a) => el("div", { class: "alt-item" }, el("strong", {}, ...ruby(a.procedure_name)), " — ", ...ruby(a.text),
        a.url ? [" ", el("a", { href: a.url, rel: "noopener" }, a.url)] : null)),
      el("p", { class: "big", id: "visit-needed" }, all ? t("all_alt") : t("visit_needed"))));
  }
  if (plan.external.length) {
    out.push(el("section", { id: "external" }, el("h2", {}, t("external_title")),
      plan.external.map((e) => el("div", { class: "proc" }, el("div", { class: "name" }, ...ruby(e.name),
        e.to_confirm ? el("span", { class: "badge" }, t("to_confirm")) : null),
        el("p", { class: "meta" }, `${t("office")}: `, ...ruby(e.where)),
        e.deadline ? el("p", { class: "meta" }, t("deadline", { text: "" }), ...ruby(e.deadline)) : null))));
  }
  const r = S.result;
  const low = Math.max(1, Math.round(plan.minutes - plan.minutes_sd));
  const high = Math.round(plan.minutes + plan.minutes_sd);
  out.push(el("section", { id: "counters" }, el("h2", {}, t("counters_title")),
    el("p", { class: "big", id: "minutes" }, t("minutes_range", { low, high })),
    r.wait_minutes !== null && r.wait_minutes !== undefined ? el("p", { class: "meta" }, t("wait_now", { n: Math.ceil(r.wait_minutes) })) : null));
  return out;
}

function viewForecast() {
  const f = S.forecast;
  if (!f) return null;
  const hours = f.days.length ? f.days[0].hours.map((h) => h.hour) : [];
  return el("section", { id: "when" }, el("h2", {}, t("when_title")), el("p", { class: "hint" }, t("when_hint")),
    f.history ? null : el("p", { class: "meta", id: "no-history" }, t("no_history")),
    el("div", { class: "legend" }, ["quiet", "busy", "crowded"].map((l) => el("span", { class: l }, t(`level_${l}`)))),
    el("div", { class: "forecast-wrap" }, el("table", { class: "forecast" },
      el("thead", {}, el("tr", {}, el("th", {}, ""), hours.map((h) => el("th", {}, `${h}`)))),
      el("tbody", {}, f.days.map((d) => el("tr", {}, el("th", {}, dayLabel(d.day)),
        d.hours.map((h) => el("td", { class: h.level, title: `${t(`level_${h.level}`)} ${t("range_min", { low: Math.round(h.low), high: Math.round(h.high) })}` },
          // no history: only the booked load is known, so a figure would be a made-up "0–0"
          f.history ? `${Math.round(h.low)}–${Math.round(h.high)}${h.high >= f.cap ? "+" : ""}` : ""))))))));
}

function viewSlots() {
  const s = S.slots;
  if (!s) return null;
  if (!s.department) return el("section", { id: "book" }, el("h2", {}, t("book_title")), el("p", {}, t("book_none")));
  const day = s.days.find((d) => d.day === S.day) || s.days[0];
  return el("section", { id: "book", class: "noprint" }, el("h2", {}, t("book_title")), el("p", { class: "hint" }, t("book_hint")),
    el("select", { id: "day", onchange: (e) => { S.day = e.target.value; S.chosen = null; render(); } },
      s.days.map((d) => el("option", { value: d.day, selected: d.day === day.day }, dayLabel(d.day)))),
    el("div", { class: "slots" }, day.slots.map((x) => el("button", {
      class: `slot${S.chosen && S.chosen.day === day.day && S.chosen.start === x.start ? " on" : ""}`,
      disabled: x.free <= 0, dataset: { start: x.start },
      onclick: () => { S.chosen = { day: day.day, start: x.start }; render(); } },
    x.start, el("small", {}, x.free > 0 ? t("free_n", { n: x.free }) : t("full"))))),
    S.chosen ? el("button", { class: "main", id: "book-now", onclick: book }, t("confirm_book", { day: dayLabel(S.chosen.day), time: S.chosen.start })) : null);
}

function viewList() {
  return [...procedureList(S.result.plan), viewForecast(), viewSlots(),
    el("section", { id: "share" }, qr(listUrl(), "list-qr"), el("p", { class: "hint" }, t("list_qr")),
      el("button", { class: "alt", id: "print", onclick: () => window.print() }, t("print"))),
    el("div", { class: "row noprint" }, el("button", { class: "alt", id: "back", onclick: back }, t("back")),
      el("button", { class: "alt", id: "restart", onclick: () => { S.purposes = []; S.answers = {}; S.view = "events"; render(); } }, t("restart")))];
}

function viewBooked() {
  const b = S.booking;
  const lateAt = clock(b.slot_start + S.snap.booking.late_minutes * 60);
  const live = b.state === "booked";
  const cs = b.consult;
  const online = cs && cs.mode === "online";
  const topic = cs ? consultTopic(cs.topic) : null;
  const head = el("section", { id: "booking", class: live ? "done" : "", dataset: { code: b.code, state: b.state } },
    el("h2", {}, live ? t("booked_title") : t(`state_${b.state}`)),
    el("p", { class: "big", id: "when-booked" }, `${dayLabel(b.day)} ${clock(b.slot_start)}–${clock(b.slot_end)}`),
    cs ? el("p", { id: "consult-booked" }, t("consult_booked_as", { topic: topic ? pick(topic.name, S.lang) : cs.topic, mode: t(`mode_${cs.mode}`) })) : null,
    el("p", {}, t("code"), el("br"), el("span", { class: "code", id: "code" }, b.code)),
    // an online consultation: the meeting link (from the server's config) shown only with the code
    online && live && cs.online_link ? [el("p", {}, t("online_link"), el("br"),
      el("a", { id: "online-link", href: cs.online_link, rel: "noopener noreferrer", target: "_blank" }, cs.online_link)),
    el("p", { class: "meta" }, t("online_hint"))] : null,
    // the reminder on the phone status page (booked time; the link of an online consultation)
    live && cs ? el("p", { class: "noprint" }, el("a", { id: "reminder-link", href: `/status/?site=${b.site}&b=${b.code}&lang=${S.lang}` }, t("reminder_link"))) : null,
    live ? [qr(bookingUrl(b), "booking-qr"), online ? null : [el("p", {}, t("booked_hint", { time: lateAt })),
      el("p", { class: "meta" }, t("late_rule", { time: lateAt }))]] : null,
    // a cancelled or missed booking says what to do next, and offers the slots again
    ["cancelled", "no_show"].includes(b.state) ? [
      el("p", { id: "next-step" }, t(b.state === "cancelled" ? "err.booking_cancelled" : "err.booking_expired")),
      el("button", { class: "alt noprint", id: "book-again", onclick: () => {
        if (cs) { S.booking = null; S.consult = { topic: cs.topic, mode: cs.mode }; S.chosen = null; S.view = "consult"; loadConsultSlots(); return; }
        S.booking = null; S.view = "list"; S.chosen = null; render(); loadExtras();
      } }, t("book_title"))] : null,
    live ? el("div", { class: "row noprint" },
      el("button", { class: "alt", id: "print", onclick: () => window.print() }, t("print")),
      cs ? null : el("button", { class: "alt", id: "change", onclick: () => {
        S.replaces = b.code;
        S.view = "list";
        S.chosen = null;
        render();
        loadExtras();  // fresh free places: the table may be minutes old
      } }, t("change")),
      el("button", { class: "alt", id: "cancel", onclick: cancelBooking }, t("cancel"))) : null);
  return [head, ...(S.result ? procedureList(S.result.plan) : [])];
}

// ------------------------------------------------------------------ start
async function fromUrl() {
  const code = params.get("b");
  if (code) {
    try {
      const r = await ask("booking", { code });
      S.booking = r.booking;
      S.purposes = r.booking.purposes;
      S.answers = r.booking.answers;
      S.view = "booked";
      if (!r.booking.consult) S.result = await ask("plan", planBody());
    } catch (e) { S.view = "events"; }
    render();
    return;
  }
  if (params.get("p")) {
    S.purposes = params.get("p").split(",").filter(Boolean);
    for (const pair of (params.get("a") || "").split(";")) {
      const i = pair.indexOf(":");
      if (i > 0) S.answers[pair.slice(0, i)] = pair.slice(i + 1);
    }
    try { await replan(); } catch (e) { S.view = "events"; render(); }
    return;
  }
  render();
}

/** The message table one language at a time (the server cuts messages.json): ~3 KB a language. */
async function loadLang(lang) {
  const r = await fetch(`/plan/messages.${lang}.json`);
  const part = await r.json();
  if (!S.i18n) { S.i18n = new I18n(part); return; }
  for (const [k, v] of Object.entries(part)) S.i18n.table[k] = { ...S.i18n.table[k], ...v };
}

let linkReady;
const online = new Promise((resolve) => { linkReady = resolve; });

/** The websocket: every question, slot and booking goes over it, but the first screen does not
 * need it, so it opens after the first paint (bench/plan_bench.py counts what the first screen
 * waits for). */
function startLink() {
  if (S.link) return;
  let first = true;
  S.link = new Link({
    hello: () => ({ role: "planner", site: S.site }),
    onReady: async (result) => {
      await S.langReady;
      S.snap = { ...result.snapshot, site_key: result.site };
      S.site = result.site;
      linkReady();
      if (first && S.booted !== "html") { first = false; fromUrl(); } else { first = false; render(); }
    },
    onState: (s) => {
      $("offline").hidden = s !== "offline";
      $("offline").textContent = S.i18n ? t("offline") : "";
    },
    onFatal: (err) => S.langReady.then(() => showError(err)),
  }).start();
}

function afterPaint(fn) {
  // the browser says when the first screen was on the glass (Paint Timing; the server's HTML may
  // paint before this script runs, so then one more frame for what the script drew); a
  // background tab paints nothing, and an old browser may not say, so at the latest after a second
  const frame = () => requestAnimationFrame(() => setTimeout(fn, 0));
  try {
    new PerformanceObserver((list, obs) => {
      if (list.getEntries().some((e) => e.name === "first-contentful-paint")) { obs.disconnect(); frame(); }
    }).observe({ type: "paint", buffered: true });
  } catch (e) { frame(); }
  setTimeout(fn, 1000);
}

function langCookie(lang) {
  document.cookie = `plan_lang=${lang}; path=/plan/; max-age=31536000; SameSite=Lax`;
}

async function main() {
  // The server sent the first screen in its one response (queue_server/plan_page.py): the message
  // table of the language it chose, the hello snapshot, and the life events drawn as HTML.
  const bootEl = document.getElementById("boot");
  const boot = bootEl ? JSON.parse(bootEl.textContent) : null;
  if (boot && boot.snapshot) {
    S.lang = boot.lang;
    S.i18n = new I18n(boot.messages);
    S.snap = boot.snapshot;
    S.site = boot.site;
    S.booted = "html";
    S.langReady = Promise.resolve();
    // boxes ticked before the script ran (or kept by the browser on "back") stay ticked
    S.purposes = [...document.querySelectorAll("#view [data-purpose] input:checked")]
      .map((i) => i.closest("[data-purpose]").dataset.purpose);
  } else {
    // no first screen from the server (an unknown site, or the files opened alone): the old way
    S.lang = boot ? boot.lang : params.get("lang") || "ja";
    if (!LANGS.includes(S.lang)) S.lang = "ja";
    S.langReady = boot ? Promise.resolve(S.i18n = new I18n(boot.messages)) : loadLang(S.lang);
    S.booted = "ws";
    startLink();
  }
  await S.langReady;
  $("lang").replaceChildren(...LANGS.map((l) => el("option", { value: l, selected: l === S.lang }, S.i18n.t("lang_name", l))));
  $("lang").addEventListener("change", async () => {
    S.lang = $("lang").value;
    await loadLang(S.lang);
    langCookie(S.lang);  // the next visit's first screen comes in this language
    // catalogue texts come translated by the server: ask again in the new language
    if (S.view !== "events" && S.purposes.length) replan(); else render();
  });
  if (S.booted === "html" && (params.get("b") || params.get("p"))) {
    // a booking or list link: its screen needs the server, so the websocket opens at once (the
    // server sent no life events for it: nothing flashes before the booking or the list)
    S.view = "loading";
    startLink();
    fromUrl();
  } else if (S.booted === "html") {
    fromUrl();
    afterPaint(startLink);
  } else {
    render();
  }
}

main();
