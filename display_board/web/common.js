// Shared by the board, the counter console and the phone status page (plain ES module, no build).
// Message table lookup, and a websocket link that says hello, pings every 15 s, reconnects with
// backoff and remembers the last sequence number so the server can replay what was missed.

export const LANGS = ["ja", "en", "zh", "ko", "vi", "pt", "ja-easy"];

export const params = new URLSearchParams(location.search);

export class I18n {
  constructor(table) { this.table = table; }

  static async load(url = "/board/messages.json") {
    const r = await fetch(url, { cache: "no-cache" });
    return new I18n(await r.json());
  }

  /** Text for key in lang, with {field}s filled; simple Japanese falls back to Japanese. */
  t(key, lang, fields = {}) {
    const texts = this.table[key];
    if (!texts) return key;  // visible, so a missing key is noticed in review
    return pick(texts, lang).replace(/\{(\w+)\}/g, (m, f) => (f in fields ? String(fields[f]) : m));
  }
}

/** The server's {ja, en, …} name objects, with the same fallbacks as queue_server.core.i18n.pick,
 * keeping catalogue/site ruby markup {市民課|しみんか} for pages that render <ruby> (plan page). */
export function pickMarked(texts, lang) {
  if (!texts) return "";
  if (typeof texts === "string") return texts;
  if (lang in texts) return String(texts[lang]);
  if (lang === "ja-easy" && "ja" in texts) return texts.ja;
  return texts.en || texts.ja || Object.values(texts)[0] || "";
}

/** pickMarked as plain text: ruby shows as 市民課（しみんか） (queue_server.core.ruby.bracketed). */
export function pick(texts, lang) {
  return pickMarked(texts, lang).replace(/\{([^{}|]+)\|([^{}|]+)\}/g, "$1（$2）");
}

export function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

export const PING_MS = 15000;
const PONG_TIMEOUT_MS = 10000;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 30000];
const BUSY_ATTEMPTS = 8;
const BUSY_MAX_MS = 15000;

/** Wait before sending a request again after its `attempt`-th busy answer (from 0): the server's
 * retry_after (seconds), doubled per attempt up to 8×, times a random 1–2 so that many consoles do
 * not come back in the same millisecond; at most 15 s (as the kiosk, kiosk/client.py busy_delay). */
export function busyDelayMs(retryAfter, attempt, rng = Math.random) {
  return Math.min(BUSY_MAX_MS, 1000 * Math.max(0.05, Number(retryAfter) || 0.5) * Math.min(2 ** attempt, 8) * (1 + rng()));
}

/**
 * One websocket to the server. `hello()` builds the hello body (without last_seq); `onReady(result)`
 * gets the hello result (with snapshot) and the last_seq it resumed from (null on a first hello); `onPush(msg)` every push; `onState(state)` one of
 * "connecting", "online", "offline". Requests return promises of results; errors reject with
 * the server's {code, message, field}.
 */
export class Link {
  constructor({ hello, onReady, onPush, onState, onFatal }) {
    Object.assign(this, { hello, onReady, onPush, onState, onFatal });
    this.ws = null;
    this.nextId = 1;
    this.waiting = new Map();
    this.lastSeq = null;      // highest seq we have fully caught up to
    this.pendingMissed = 0;   // replayed calls still to come after a resync hello
    this.helloSeq = null;
    this.attempt = 0;
    this.state = "connecting";
    this.stopped = false;
  }

  start() { this._connect(); return this; }

  stop() { this.stopped = true; if (this.ws) this.ws.close(); }

  _setState(s) { if (s !== this.state) { this.state = s; this.onState && this.onState(s); } }

  _connect() {
    this._setState(this.attempt ? "offline" : "connecting");
    let ws;
    try { ws = new WebSocket(wsUrl()); } catch (e) { this._retry(); return; }
    this.ws = ws;
    ws.onopen = async () => {
      const body = { ...this.hello() };
      if (this.lastSeq !== null) body.last_seq = this.lastSeq;
      try {
        const result = await this.request("hello", body);
        this.attempt = 0;
        this.pendingMissed = result.missed || 0;
        this.helloSeq = result.seq;
        this.lastHello = { seq: result.seq, missed: result.missed || 0, lastSeqSent: body.last_seq ?? null };
        if (result.truncated) this.lastSeq = result.seq;  // history we cannot replay: start over from the snapshot
        else if (this.lastSeq === null || this.pendingMissed === 0) this.lastSeq = Math.max(this.lastSeq ?? 0, result.seq);
        this._setState("online");
        this.onReady && this.onReady(result, body.last_seq ?? null);
        this._startPing();
      } catch (err) {
        // a wrong token or unknown ticket will not get better by retrying
        if (err && ["bad_token", "unknown_ticket", "unknown_counter", "unknown_site"].includes(err.code)) {
          this.stopped = true;
          this.onFatal && this.onFatal(err);
          ws.close();
        }
      }
    };
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onclose = () => {
      this._stopPing();
      for (const [, p] of this.waiting) p.reject({ code: "offline", message: "connection closed" });
      this.waiting.clear();
      if (this.ws === ws) this.ws = null;
      if (!this.stopped) this._retry();
    };
  }

  _retry() {
    this._setState("offline");
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    // jitter keeps fifty boards from reconnecting in the same millisecond after a restart
    setTimeout(() => this._connect(), delay * (0.8 + 0.4 * Math.random()));
  }

  _onMessage(raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch (e) { return; }
    if (msg.push) {
      if (msg.push === "call" && this.pendingMissed > 0) {
        this.pendingMissed -= 1;
        this.lastSeq = Math.max(this.lastSeq ?? 0, msg.seq);
        if (this.pendingMissed === 0) this.lastSeq = Math.max(this.lastSeq, this.helloSeq);
      } else if (this.pendingMissed === 0 && typeof msg.seq === "number") {
        this.lastSeq = Math.max(this.lastSeq ?? 0, msg.seq);
      }
      this.onPush && this.onPush(msg);
      return;
    }
    const p = this.waiting.get(msg.re);
    if (!p) return;
    this.waiting.delete(msg.re);
    if (msg.error) p.reject(msg.error); else p.resolve(msg.result);
  }

  /** A request; a `busy` answer (the server was behind and applied nothing) is sent again with
   * the same body — the same idempotency key — after its retry_after, doubled per busy answer and
   * jittered (busyDelayMs), up to BUSY_ATTEMPTS times; `onBusy(type, attempt)` may say so. */
  async request(type, body = {}) {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(type, body);
      } catch (err) {
        if (err?.code !== "busy" || attempt + 1 >= BUSY_ATTEMPTS) throw err;
        this.onBusy && this.onBusy(type, attempt);
        await new Promise((resolve) => setTimeout(resolve, busyDelayMs(err.retry_after, attempt)));
      }
    }
  }

  requestOnce(type, body = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject({ code: "offline", message: "not connected" });
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ type, id, ...body }));
    });
  }

  _startPing() {
    this._stopPing();
    this.pinger = setInterval(() => {
      const ws = this.ws;
      // a ping with no answer means a dead link the browser has not noticed (e.g. a cut cable)
      const timer = setTimeout(() => ws && ws.close(), PONG_TIMEOUT_MS);
      this.request("ping").then(() => clearTimeout(timer), () => clearTimeout(timer));
    }, PING_MS);
  }

  _stopPing() { if (this.pinger) clearInterval(this.pinger); this.pinger = null; }
}

/** Local time as HH:MM (the lobby's clock; the board runs in the city's timezone). */
export function hhmm(date = new Date()) {
  return date.toLocaleTimeString("ja-JP", { hour: "2-digit", minute: "2-digit", hour12: false });
}

/** Create an element with attributes and children (text or nodes). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  let easy = false;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "lang") { setLang(e, v); easy = v === "ja-easy"; continue; }
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  if (easy) e.classList.add("easy");
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** The BCP 47 tag of one of our languages: やさしい日本語 is Japanese (`ja`) marked with the class
 * `easy` — "ja-easy" is not a valid language tag, and screen readers must read it as Japanese. */
export function htmlLang(lang) {
  return lang === "ja-easy" ? "ja" : lang;
}

/** Set an element's lang (and the `easy` class for やさしい日本語). */
export function setLang(e, lang) {
  e.setAttribute("lang", htmlLang(lang));
  e.classList.toggle("easy", lang === "ja-easy");
}
