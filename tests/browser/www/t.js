// Page-side helpers for the browser tests (loaded as window.t).

/** Records every event of a WebSocket-like target as plain data, in order. */
export function trace(ws) {
  const log = [];
  for (const type of ['open', 'message', 'error', 'close']) {
    ws.addEventListener(type, (e) => log.push(describe(e, ws)));
  }
  return log;
}

export function describe(e, ws) {
  const base = { type: e.type, readyState: ws.readyState, ctor: e.constructor.name };
  if (e.type === 'message') {
    let data;
    if (typeof e.data === 'string') data = e.data.length > 64 ? `text(${e.data.length})` : e.data;
    else if (e.data instanceof Blob) data = `Blob(${e.data.size})`;
    else data = `${e.data.constructor.name}(${e.data.byteLength})`;
    return { ...base, data, origin: e.origin };
  }
  if (e.type === 'close') return { ...base, code: e.code, reason: e.reason, wasClean: e.wasClean };
  return base;
}

/** Resolves with the next `type` event; rejects after `ms`. */
export function once(target, type, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${type}`)), ms);
    target.addEventListener(type, (e) => { clearTimeout(timer); resolve(e); }, { once: true });
  });
}

/** Resolves with the first of `types` to fire. */
export function onceAny(target, types, ms = 20000) {
  return Promise.race(types.map((type) => once(target, type, ms)));
}

/** Collects `n` messages (data values) or rejects after `ms`. */
export function messages(ws, n, ms = 30000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => reject(new Error(`timeout: ${got.length}/${n} messages`)), ms);
    const on = (e) => {
      got.push(e.data);
      if (got.length === n) { clearTimeout(timer); ws.removeEventListener('message', on); resolve(got); }
    };
    ws.addEventListener('message', on);
  });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

export async function until(pred, ms = 10000, step = 10) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await sleep(step);
  }
  throw new Error('until: condition not met in time');
}

/** Deterministic, incompressible bytes (xorshift32) for big-message and backpressure checks. */
export function pattern(n, seed = 1) {
  const a = new Uint8Array(n);
  let x = (seed >>> 0) || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    a[i] = x & 0xff;
  }
  return a;
}

export function equalBytes(a, b) {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a); const y = new Uint8Array(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export async function stats() {
  const r = await fetch('/.h2ws/stats', { cache: 'no-store' });
  if (!r.ok) throw new Error(`stats: HTTP ${r.status}`);
  return r.json();
}

/**
 * Every request the page's code hands to the global fetch() while `body` runs, in order:
 * { url, method, headers } (header names lower-case). The library passes Request objects.
 */
export async function requestsDuring(body) {
  const realFetch = globalThis.fetch;
  const seen = [];
  globalThis.fetch = function (input, init) {
    const request = input instanceof Request ? input : new Request(input, { ...init, body: undefined });
    seen.push({ url: request.url, method: request.method, headers: Object.fromEntries(request.headers) });
    return realFetch.call(this, input, init);
  };
  try {
    await body();
  } finally {
    globalThis.fetch = realFetch;
  }
  return seen;
}

/**
 * Which upstream kind the library's fetch() calls use while `body` runs: `stream`
 * (h2ws-session, no h2ws-seq) or `post` (h2ws-seq); read acks (h2ws-read) are neither.
 */
export async function upstreamKinds(body) {
  const kinds = new Set();
  for (const { headers } of await requestsDuring(body)) {
    if (headers['h2ws-session'] && !headers['h2ws-read']) kinds.add(headers['h2ws-seq'] ? 'post' : 'stream');
  }
  return [...kinds].sort();
}

/**
 * Message `i` of a sequenced run (resume tests): text for even `i`, binary for odd, the number
 * first and filler whose length and content vary with `i` (every 97th is 20 000 bytes), so a
 * lost, duplicated, reordered or corrupted message shows as a mismatch.
 */
export function numbered(i) {
  const len = i % 97 === 0 ? 20000 : ((i % 97) * 13) % 700;
  if (i % 2 === 0) return `${i}:${String.fromCharCode(97 + (i % 26)).repeat(len)}`;
  const a = new Uint8Array(4 + len);
  new DataView(a.buffer).setUint32(0, i);
  for (let k = 0; k < len; k++) a[4 + k] = (k + i) & 0xff;
  return a;
}

function describeNumbered(data) {
  if (typeof data === 'string') return `text ${data.slice(0, data.indexOf(':'))} (${data.length})`;
  const bytes = new Uint8Array(data);
  return bytes.length >= 4 ? `binary ${new DataView(bytes.buffer).getUint32(0)} (${bytes.length})` : `binary (${bytes.length})`;
}

/**
 * Sends `n` numbered messages through `ws` (an open H2WebSocket on /ws/echo, binaryType
 * arraybuffer) with at most `window` unanswered, and checks the `n` echoes in order. Returns
 * the run's live state ({ sent, received, error, events }) with `done`, which resolves once
 * all came back or at the first wrong message or event (`error`, `close`).
 */
export function sequencedEcho(ws, n, window = 400) {
  const run = { sent: 0, received: 0, error: null, events: [] };
  let finish;
  run.done = new Promise((resolve) => { finish = resolve; });
  const top = () => {
    while (run.sent < n && run.sent - run.received < window && run.error === null) ws.send(numbered(run.sent++));
  };
  ws.addEventListener('message', (e) => {
    if (run.error !== null) return;
    const want = numbered(run.received);
    const ok = typeof want === 'string' ? e.data === want : e.data instanceof ArrayBuffer && equalBytes(e.data, want);
    if (!ok) {
      run.error = `message ${run.received}: got ${describeNumbered(e.data)}`;
      finish(run);
      return;
    }
    run.received += 1;
    if (run.received === n) finish(run);
    else top();
  });
  for (const type of ['error', 'close']) {
    ws.addEventListener(type, (e) => {
      run.events.push(type === 'close' ? `close ${e.code}` : type);
      if (run.received < n) {
        run.error ??= `${type} event after ${run.received} messages`;
        finish(run);
      }
    });
  }
  top();
  return run;
}
