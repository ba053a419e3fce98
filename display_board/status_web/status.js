// Phone status page: the ticket's number, place in the queue, estimated wait, and a clear called
// state. The URL carries the ticket's unguessable public token (?t=…). Nothing personal is shown:
// the server's public view has none.
import { I18n, LANGS, Link, el, htmlLang, params, pick } from "/board/common.js";

const S = { i18n: null, status: null, lang: null, alerts: false, lastAlert: 0, updated: null };
window.__status = S;
const $ = (id) => document.getElementById(id);
const t = (key, fields = {}) => S.i18n.t(key, S.lang, fields);

function render() {
  document.documentElement.lang = htmlLang(S.lang);
  document.documentElement.classList.toggle("easy", S.lang === "ja-easy");
  $("lang-label").textContent = t("status.language");
  $("number-caption").textContent = t("status.your_number");
  $("steps-title").textContent = t("status.steps");
  $("privacy").textContent = t("status.privacy");
  $("alerts").textContent = S.alerts ? t("status.alerts_on") : t("status.enable_alerts");
  $("alerts").classList.toggle("on", S.alerts);
  document.title = t("status.title");
  const st = S.status;
  if (!st) return;
  $("site").textContent = pick(st.site_name, S.lang);
  $("number").textContent = st.number;
  $("updated").textContent = S.updated ? t("status.updated", { time: S.updated.toLocaleTimeString(S.lang === "ja-easy" ? "ja" : S.lang, { hour: "2-digit", minute: "2-digit" }) }) : "";
  const box = $("state");
  const called = st.called;
  box.className = "state";
  if (called && called.state === "called") {
    box.classList.add("called");
    const counter = t("board.counter_n", { n: called.counter });
    const floor = t("board.floor_n", { n: called.floor });
    box.replaceChildren(el("p", { class: "big" }, t("status.called_title")),
      el("p", { class: "where", id: "called-counter" }, counter),
      el("p", { class: "sub" }, t("status.go_to", { counter, floor })));
  } else if (called && called.state === "serving") {
    box.replaceChildren(el("p", { class: "big" }, t("status.serving")));
  } else if (["done", "no_show", "cancelled"].includes(st.state)) {
    box.classList.add(st.state === "done" ? "done" : "closed");
    box.replaceChildren(el("p", { class: "big" }, t(`status.${st.state}`)));
  } else if (st.wait_kind === "closed") {
    // no counter for this queue is open: say that, not "you are next"
    box.classList.add("paused");
    box.replaceChildren(el("p", { class: "big", id: "position" }, t("status.paused")),
      el("p", { class: "sub" }, t("status.paused_sub")));
  } else {
    const ahead = st.position === 0 ? t("status.next") : st.position === null || st.position === undefined ? "" : t("status.ahead", { n: st.position });
    box.replaceChildren(el("p", { class: "big", id: "position" }, ahead || t("state.waiting")),
      el("p", { class: "sub" }, `${t("status.wait")}: `, el("strong", { id: "wait" }, waitText(st)),
        st.wait_kind === "few_counters" ? el("span", { class: "why" }, ` （${t("board.few_counters")}）`) : null));
  }
  const waiting = !called && !["done", "no_show", "cancelled"].includes(st.state);
  // where to wait first: the queues with an open counter (parallel steps: any of them may call)
  const all = waiting ? (st.go || []) : [];
  const go = all.some((g) => g.open) ? all.filter((g) => g.open) : all;
  $("where").hidden = !go.length;
  $("where-title").textContent = t("status.where_title");
  $("go").replaceChildren(...go.map((g) => el("li", { dataset: { department: g.department } },
    t("status.go_wait", { floor: t("board.floor_n", { n: g.floor }), department: pick(g.name, S.lang),
      counters: g.counters.join("・") }))));
  $("steps").replaceChildren(...st.steps.map((s) => el("li", { class: s.state },
    pick(s.name, S.lang), el("span", { class: "st" }, t(`state.${s.state}`)))));
}

/** The wait as every client words it (the server's wait_kind, wait_low, wait_high). */
function waitText(st) {
  if (st.wait_kind === "soon" || (st.wait_minutes !== null && st.wait_minutes !== undefined && st.wait_minutes < 1)) return t("board.soon");
  if (st.wait_low !== null && st.wait_low !== undefined) return t("board.range", { lo: st.wait_low, hi: st.wait_high });
  if (st.wait_minutes === null || st.wait_minutes === undefined) return t("board.unknown_wait");
  return t("board.minutes", { n: Math.ceil(st.wait_minutes) });
}

function alertCalled() {
  // vibration and sound only where the phone allows (sound needs the tap on the alerts button)
  const now = Date.now();
  if (now - S.lastAlert < 8000) return;  // the same call arrives as an event push and a refresh
  S.lastAlert = now;
  if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
  if (S.alerts && S.audio) {
    const ctx = S.audio;
    [0, 0.35, 0.7].forEach((at) => {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.3, ctx.currentTime + at);
      g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.3);
      o.connect(g).connect(ctx.destination);
      o.start(ctx.currentTime + at);
      o.stop(ctx.currentTime + at + 0.3);
    });
  }
}

function update(status) {
  const wasCalled = S.status?.called?.state === "called";
  S.status = status;
  S.updated = new Date();
  if (!S.lang) S.lang = params.get("lang") || localStorage.getItem("madoguchi.status.lang") || status.lang || "ja";
  if (!LANGS.includes(S.lang)) S.lang = "ja";
  $("lang").value = S.lang;
  render();
  if (status.called?.state === "called" && (!wasCalled || Date.now() - S.lastAlert > 8000)) alertCalled();
}

// ?b=CODE (&site=): a booking's reminder before the visit — the booked time and, for an online
// consultation, the meeting link (which the server gives only to whoever holds the code).
function renderBooking(b) {
  $("number-caption").textContent = t("status.booking_caption");
  $("number").textContent = b.code;
  const day = new Date(b.slot_start * 1000);
  const fmt = (d, o) => d.toLocaleString(S.lang === "ja-easy" ? "ja" : S.lang, { timeZone: "Asia/Tokyo", ...o });
  const when = `${fmt(day, { month: "numeric", day: "numeric", weekday: "short" })} `
    + `${fmt(day, { hour: "2-digit", minute: "2-digit", hour12: false })}–${fmt(new Date(b.slot_end * 1000), { hour: "2-digit", minute: "2-digit", hour12: false })}`;
  const online = b.consult && b.consult.mode === "online";
  const live = b.state === "booked";
  $("state").className = `state${live ? "" : " closed"}`;
  $("state").replaceChildren(el("p", { class: "big", id: "booking-when" }, t("status.booking_when", { when })),
    live ? el("p", { class: "sub" }, t(online ? "status.booking_online" : "status.booking_in_person")) : el("p", { class: "sub", id: "booking-state" }, t(`status.booking_${b.state}`)),
    live && online && b.consult.online_link ? el("p", { class: "sub" },
      el("a", { id: "booking-link", href: b.consult.online_link, rel: "noopener noreferrer", target: "_blank" }, b.consult.online_link)) : null);
  for (const id of ["alerts", "where"]) $(id).hidden = true;
  document.querySelector(".steps-box").hidden = true;
}

async function main() {
  S.i18n = await I18n.load("/board/messages.json");
  S.lang = params.get("lang") || localStorage.getItem("madoguchi.status.lang") || null;
  $("lang").replaceChildren(...LANGS.map((l) => el("option", { value: l }, S.i18n.t("lang_name", l))));
  $("lang").addEventListener("change", () => {
    S.lang = $("lang").value;
    localStorage.setItem("madoguchi.status.lang", S.lang);
    render();
  });
  $("alerts").addEventListener("click", () => {
    S.alerts = true;
    try { S.audio = S.audio || new AudioContext(); S.audio.resume(); } catch (e) { /* no sound */ }
    if (navigator.vibrate) navigator.vibrate(50);
    render();
  });
  if (!S.lang) S.lang = "ja";
  render();
  if (params.get("b")) {
    $("lang").addEventListener("change", () => { if (S.booking) { render(); renderBooking(S.booking); } });
    S.reminderLink = new Link({
      hello: () => ({ role: "planner", site: params.get("site") || undefined }),
      onReady: async (result) => {
        $("site").textContent = pick(result.snapshot.site_name, S.lang);
        try {
          const r = await S.reminderLink.request("booking", { code: params.get("b") });
          S.booking = r.booking;
          renderBooking(r.booking);
        } catch (e) {
          $("state").replaceChildren(el("p", { class: "big", id: "not-found" }, t("status.not_found")));
          $("number").textContent = "—";
        }
      },
      onState: (s) => { $("offline").hidden = s !== "offline"; },
    }).start();
    return;
  }
  const token = params.get("t") || "";
  // The QR code carries only the token; the server looks it up in one site (the first unless
  // told). A branch office's ticket is found by trying the other sites listed by /healthz.
  let sites = params.get("site") ? [params.get("site")] : null;
  const connect = (site) => new Link({
    hello: () => ({ role: "public", ticket: token, site }),
    onReady: (result) => update(result.snapshot.status),
    onPush: (msg) => { if (msg.push === "status") update(msg.data); },
    onState: (s) => {
      $("offline").hidden = s !== "offline";
      $("offline").textContent = S.i18n ? S.i18n.t("conn.offline", S.lang || "ja") : "";
    },
    onFatal: async (err) => {
      if (err.code === "unknown_ticket" && sites === null) {
        let keys = [];
        try { keys = Object.keys((await (await fetch("/healthz")).json()).sites); } catch (e) { /* none */ }
        sites = site ? keys.filter((k) => k !== site) : keys.slice(1);  // the first is the default just tried
        if (sites.length) return connect(sites.shift());
      } else if (err.code === "unknown_ticket" && sites.length) {
        return connect(sites.shift());
      }
      $("main").classList.add("not-found");
      $("state").replaceChildren(el("p", { class: "big", id: "not-found" }, t("status.not_found")));
      $("number").textContent = "—";
    },
  }).start();
  connect(sites ? sites.shift() : undefined);
}

main();
