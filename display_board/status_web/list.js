// The whole personal list on the phone page (procedures per department, deadlines, documents,
// online alternatives), with each step's live state: done / now / next. A separate module from
// status.js: it reads the list once per language from /status/list.json (the same unguessable
// token) and takes the live states from the status page's own updates (window.__status), watched
// through the #steps list it re-renders; no second websocket. Printable / savable as PDF.
import { I18n, el, params, pick } from "/board/common.js";

const L = { i18n: null, list: null, lang: null, loading: false };
window.__list = L;
const $ = (id) => document.getElementById(id);
const t = (key, fields = {}) => L.i18n.t(key, L.lang, fields);
// catalogue readings {市民課|しみんか} show as 市民課（しみんか）, as on the rest of the page
const ruby = (x) => String(x).replace(/\{([^{}|]+)\|([^{}|]+)\}/g, "$1（$2）");
const LIVE = { done: "done", called: "now", serving: "now", ready: "next", pending: "next", no_show: "skipped", cancelled: "skipped" };

function liveStates() {
  const steps = window.__status?.status?.steps;
  if (!steps) return L.list.steps.map((s) => s.state);
  const states = steps.map((s) => LIVE[s.state] || "next");
  let seen = states.includes("now");
  return states.map((s) => { if (s !== "next") return s; if (seen) return "later"; seen = true; return "next"; });
}

function render() {
  const box = $("full-list");
  if (!L.list) { box.hidden = true; return; }
  box.hidden = false;
  const states = liveStates();
  box.replaceChildren(
    el("h2", {}, t("list.title")),
    el("p", { class: "list-intro" }, t("list.intro")),
    el("ol", { class: "plist" }, L.list.steps.map((s, i) => {
      const state = states[i] || s.state;
      const ja = s.name.ja && L.lang !== "ja" && L.lang !== "ja-easy" ? `（${pick(s.name, "ja")}）` : "";
      return el("li", { class: `pstep ${state}`, "data-state": state, "data-department": s.department }, [
        el("h3", {}, [el("span", { class: "pstate" }, t(`list.state.${state}`)), ` ${pick(s.name, L.lang)}${ja}`]),
        el("ul", {}, s.procedures.map((p) => el("li", { class: "proc" }, [
          el("strong", {}, ruby(p.name)),
          p.deadline ? el("div", { class: "deadline" }, t("list.deadline", { deadline: ruby(p.deadline) })) : null,
          p.documents.length ? el("div", { class: "docs" }, t("list.documents", { documents: p.documents.map(ruby).join(" / ") })) : null,
          p.alternative ? el("div", { class: "alt" }, [t("list.online"), " ", el("a", { href: p.alternative.url }, ruby(p.alternative.text))]) : null,
        ]))),
      ]);
    })),
    el("button", { type: "button", class: "print-list", onclick: () => window.print() }, t("list.print")),
  );
}

async function load() {
  const lang = window.__status?.lang || params.get("lang") || "ja";
  if (L.loading || (L.list && lang === L.lang)) { render(); return; }
  L.loading = true;
  try {
    const q = new URLSearchParams({ t: params.get("t") || "", lang });
    if (params.get("site")) q.set("site", params.get("site"));
    const r = await fetch(`/status/list.json?${q}`, { cache: "no-cache" });
    if (r.ok) { L.list = await r.json(); L.lang = lang; }
  } finally {
    L.loading = false;
  }
  render();
}

async function main() {
  L.i18n = await I18n.load("/board/messages.json");
  // status.js re-renders #steps on every status update and language change: follow it
  new MutationObserver(() => load()).observe($("steps"), { childList: true, subtree: true });
  await load();
}

main();
