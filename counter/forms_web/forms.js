// Forms of the ticket at this counter (書かない窓口). Opened from the counter console; talks to the
// server as that counter (`forms`, `form_values`, `forms_printed`). The values are personal data:
// this page keeps them only in memory, never in localStorage, and the server erases them when the
// visit closes. Query: site, counter, token, staff, lang (staff UI), form (one form only, for a PDF).
import { I18n, Link, el, params, pick } from "/board/common.js";

const LANG = params.get("lang") || "ja";
const ONLY = params.get("form");
const VIEW = params.get("view") || "forms";  // "list": the A4 personal list (おくやみ booklet)
const S = { i18n: null, link: null, data: null, busy: false, error: null };
window.__forms = S;

const $ = (id) => document.getElementById(id);
const t = (key, fields = {}) => S.i18n.t(key, LANG, fields);

function applyTexts(root = document) {
  for (const node of root.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
}

function fieldLabel(label, lang) {
  // official forms are in Japanese; the citizen's language is added beside it when the form has it
  const ja = label.ja;
  const other = lang !== "ja" && lang !== "ja-easy" && label[lang] ? label[lang] : null;
  return el("span", { class: "label" }, [ja, other ? el("small", {}, [other]) : null].filter(Boolean));
}

function sheet(form, d) {
  const lang = d.ticket.lang;
  const rows = form.fields.map((f) => el("div", {
    class: `field${f.missing ? " missing" : ""}`, style: `width:${f.width}%`, "data-field": f.id,
  }, [fieldLabel(f.label, lang), f.missing ? el("span", { class: "mark" }, t("forms.missing")) : null,
        el("span", { class: "value" }, [f.value])]));
  const translated = lang !== "ja" && form.name[lang] ? form.name[lang] : null;
  return el("section", { class: "sheet", "data-form": form.id }, [
    el("h2", {}, [form.name.ja]),
    translated ? el("p", { class: "translated" }, [translated]) : null,
    el("div", { class: "meta" }, [
      el("span", {}, [t("forms.prepared", { number: d.ticket.number, site: d.ticket.site, date: d.ticket.date })]),
      el("span", { class: form.estimate ? "estimate" : "" }, [form.estimate ? t("forms.estimate") : t("forms.source", { source: form.source })]),
    ]),
    el("div", { class: "fields" }, rows),
    form.note ? el("p", { class: "note" }, [pick(form.note, "ja") + (lang !== "ja" && form.note[lang] ? ` / ${form.note[lang]}` : "")]) : null,
    el("div", { class: "sign" }, [el("div", {}, [t("forms.signature")]), el("div", { style: "flex:0 0 40mm" }, [t("forms.received")])]),
  ].filter(Boolean));
}

// The A4 personal list for the family, in the citizen's language, the steps done so far ticked.
function booklet(d) {
  const lang = d.list.lang;
  const tl = (key, fields = {}) => S.i18n.t(key, lang, fields);
  const ruby = (x) => String(x).replace(/\{([^{}|]+)\|([^{}|]+)\}/g, "$1（$2）");
  return el("section", { class: "sheet booklet", "data-form": "list", lang }, [
    el("h2", {}, tl("booklet.title")),
    el("p", { class: "translated" }, tl("booklet.intro", { number: d.ticket.number })),
    el("ol", { class: "bsteps" }, d.list.steps.map((s) => {
      const ja = lang !== "ja" && lang !== "ja-easy" && s.name.ja ? `（${ruby(s.name.ja)}）` : "";
      return el("li", { class: `bstep ${s.state}`, "data-state": s.state }, [
        el("h3", {}, [el("span", { class: "box" }, s.state === "done" ? "☑" : "☐"), ` ${ruby(pick(s.name, lang))}${ja}`]),
        el("ul", {}, s.procedures.map((p) => el("li", {}, [
          el("strong", {}, ruby(p.name)),
          p.deadline ? el("div", { class: "deadline" }, tl("booklet.deadline", { deadline: ruby(p.deadline) })) : null,
          p.documents.length ? el("div", {}, tl("booklet.documents", { documents: p.documents.map(ruby).join(" / ") })) : null,
          p.alternative ? el("div", {}, tl("booklet.online", { text: `${ruby(p.alternative.text)} ${p.alternative.url}` })) : null,
        ]))),
      ]);
    })),
    el("p", { class: "foot" }, tl("booklet.printed", { site: d.ticket.site, date: d.ticket.date })),
  ]);
}

function render() {
  const d = S.data;
  $("sheets").replaceChildren();
  $("ask-fields").replaceChildren();
  $("audit").replaceChildren();
  if (!d) {
    $("message").textContent = S.error || t("forms.no_ticket");
    $("ticket-number").textContent = "";
    $("other").hidden = true;
    return;
  }
  $("ticket-number").textContent = d.ticket.number;
  $("no-card").hidden = d.card;
  const forms = ONLY ? d.forms.filter((f) => f.id === ONLY) : d.forms;
  if (!forms.length && !S.message) $("message").textContent = t("forms.none_here");
  $("sheets").replaceChildren(...(VIEW === "list" ? [booklet(d)] : forms.map((f) => sheet(f, d))));
  const other = new URLSearchParams(location.search);
  other.set("view", VIEW === "list" ? "forms" : "list");
  other.delete("form");
  $("booklet-link").href = `?${other}`;
  $("booklet-link").textContent = t(VIEW === "list" ? "forms.open_forms" : "forms.open_booklet");
  $("ask-fields").replaceChildren(...d.ask.map((a) => el("label", {}, [
    pick(a.label, LANG),
    el("input", { name: a.key, value: a.value, maxlength: "200", class: a.value ? "" : "empty" }),
  ])));
  $("other").hidden = !d.other_forms.length;
  $("other-list").replaceChildren(...d.other_forms.map((f) => el("li", {}, [`${pick(f.name, LANG)}（${pick(f.department_name, LANG) || f.department}）`])));
  $("audit").replaceChildren(...d.audit.map((a) => el("li", {}, [t(`forms.audit.${a.action}`, {
    time: new Date(a.at * 1000).toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit" }),
    staff: a.staff || "—", counter: a.counter, department: pick(d.departments?.[a.department], LANG) || a.department, keys: a.keys.join("、"),
  })])));
}

async function request(type, body = {}) {
  S.busy = true;
  try {
    S.data = await S.link.request(type, body);
    S.error = null;
  } catch (err) {
    S.data = err.code === "no_current_ticket" ? null : S.data;
    S.error = err.code === "no_current_ticket" ? t("forms.no_ticket") : `${err.code}: ${err.message}`;
  } finally {
    S.busy = false;
  }
  render();
}

async function save(ev) {
  ev.preventDefault();
  const values = {};
  for (const input of $("ask-fields").querySelectorAll("input")) values[input.name] = input.value;
  S.message = true;
  await request("form_values", { values });
  if (!S.error) $("message").textContent = t("forms.saved");
  else $("message").textContent = S.error;
}

// When the ticket leaves this counter (completed, transferred, closed) its values must not stay on
// screen: every queue update checks which ticket the counter has now (no audit line for that).
async function followCounter() {
  let cur;
  try { cur = await S.link.request("current"); } catch (e) { return; }
  const id = cur.ticket?.id || null;
  if (id === (S.data?.ticket.id || null)) return;
  S.data = null;
  S.error = null;
  render();
  if (id) await request("forms");
}

/** Record which forms are printed (KPI 書かない窓口利用率), then open the browser's print dialog. */
S.markPrinted = async () => {
  const ids = [...document.querySelectorAll(".sheet:not(.booklet)")].map((s) => s.dataset.form);
  if (ids.length) await request("forms_printed", { forms: ids });
};

async function main() {
  S.i18n = await I18n.load("/forms/messages.json");
  applyTexts();
  S.link = new Link({
    hello: () => ({ role: "counter", site: params.get("site") || undefined, counter: Number(params.get("counter")),
                    token: params.get("token") || "", staff: params.get("staff") || "" }),
    onReady: () => request("forms"),
    onPush: (msg) => { if (msg.push === "queue") followCounter(); },
    onState: (s) => { $("conn").textContent = s; },
    onFatal: (err) => { S.error = `${err.code}: ${err.message}`; render(); },
  }).start();
  $("ask").addEventListener("submit", save);
  $("reload").addEventListener("click", () => request("forms"));
  $("print").addEventListener("click", async () => { await S.markPrinted(); window.print(); });
}

main();
