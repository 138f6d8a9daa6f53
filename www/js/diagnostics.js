// What the page knows about its connection, and the on-screen problems with what to do about them.

import { $, h, rich, timeout } from './dom.js';

// ---- facts ----------------------------------------------------------------------------------

const PROTO_NAMES = { h2: 'HTTP/2', 'http/1.1': 'HTTP/1.1', 'http/1.0': 'HTTP/1.0', h3: 'HTTP/3' };
export const protoName = (p) => PROTO_NAMES[p] ?? (p || 'unknown');

/** nextHopProtocol of the page itself ('h2', 'http/1.1', … or '' when the browser hides it). */
export function pageProtocol() {
  const nav = performance.getEntriesByType('navigation')[0];
  return nav?.nextHopProtocol ?? '';
}

/** Protocols seen by resource timing for URLs under `prefix` (e.g. '/pkg/'), deduplicated. */
export function resourceProtocols(prefix) {
  const seen = new Map();
  for (const e of performance.getEntriesByType('resource')) {
    const path = new URL(e.name).pathname;
    if (!path.startsWith(prefix)) continue;
    seen.set(e.nextHopProtocol || '?', (seen.get(e.nextHopProtocol || '?') ?? 0) + 1);
  }
  return seen;
}

/** Whether this browser streams fetch() request bodies at all (Chromium ≥ 105; not Firefox/Safari). */
export function browserStreamsRequests() {
  let duplexAccessed = false;
  try {
    const hasContentType = new Request(location.href, {
      body: new ReadableStream(),
      method: 'POST',
      get duplex() {
        duplexAccessed = true;
        return 'half';
      },
    }).headers.has('Content-Type');
    return duplexAccessed && !hasContentType;
  } catch {
    return false;
  }
}

export function setFact(id, text, state, title) {
  const el = $(`#fact-${id}`);
  if (!el) return;
  el.textContent = text;
  el.dataset.state = state;
  if (title) el.title = title;
}

// ---- server probe ---------------------------------------------------------------------------

/** GET /.h2ws/stats: {ok, stats} or {ok: false, network: bool, error}. */
export async function probeServer(ms = 3000) {
  try {
    const res = await timeout(fetch('/.h2ws/stats', { cache: 'no-store' }), ms, 'GET /.h2ws/stats');
    if (!res.ok) return { ok: false, network: false, error: new Error(`HTTP ${res.status}`) };
    return { ok: true, stats: await res.json() };
  } catch (error) {
    return { ok: false, network: true, error };
  }
}

/**
 * Chromium refuses to register a service worker from an origin whose certificate it does not
 * trust, even after the user clicked through the warning — the one way a page can tell.
 * Resolves to true (untrusted), false (trusted) or null (cannot tell).
 */
export async function certificateUntrusted() {
  if (location.protocol !== 'https:' || !('serviceWorker' in navigator)) return null;
  try {
    const reg = await timeout(
      navigator.serviceWorker.register('js/cert-probe-sw.js', { scope: 'js/cert-probe/' }),
      5000,
      'service worker probe',
    );
    await reg.unregister().catch(() => {});
    return false;
  } catch (e) {
    return /ssl|certificate/i.test(String(e?.message)) ? true : null;
  }
}

// ---- issues (the banners at the top) ---------------------------------------------------------

const SERVER_CMD = 'cargo xtask dev';

/**
 * The problems the demo knows how to explain. Each: title, what happened, what to do.
 * Texts use `backticks` for code.
 */
const ISSUES = {
  'pkg-missing': (d) => ({
    level: 'error',
    title: 'The h2ws package did not load from /pkg/',
    what: `${d.detail} — so the H2WebSocket transports (\`stream\`, \`post\`) and the backpressure view are off; the browser’s own WebSocket still works below.`,
    todo: [
      `Build the package and serve it: \`${SERVER_CMD}\` (builds \`wasm/pkg\` and starts the server), or \`bash wasm/build.sh --dev\` and reload.`,
      'A server started by hand needs `--pkg wasm/pkg` (the directory with the built package.json).',
      'Look in the browser console for the exact import or wasm error.',
    ],
  }),
  http1: (d) => ({
    level: 'warn',
    title: `This page came over ${protoName(d.proto)}, not HTTP/2`,
    what:
      'Browsers stream a fetch() request body only over HTTP/2, so the `stream` transport cannot open here. ' +
      'H2WebSocket’s default `auto` transport falls back to `post`: the downstream is still one streaming response, ' +
      'the upstream becomes ordered PUT batches (one request per batch, so sending costs more). The browser’s own WebSocket uses RFC 6455 here.' +
      (location.protocol === 'http:'
        ? ' Reason: the page was loaded over plain `http://` — browsers speak HTTP/2 only over TLS.'
        : ' Reason: something between the browser and the server (a proxy or load balancer) speaks HTTP/1.1 to the browser, or HTTP/2 is disabled in this browser.'),
    todo:
      location.protocol === 'http:'
        ? [`Open the server’s \`https://\` address instead (the one \`${SERVER_CMD}\` prints; by default \`https://localhost:8443/\`).`]
        : ['Make the proxy speak HTTP/2 (ALPN `h2`) to browsers, or connect to the devserver directly.'],
  }),
  'no-request-streaming': () => ({
    level: 'info',
    title: 'This browser cannot stream request bodies',
    what: 'fetch() upload streaming is a Chromium feature (105+); Firefox and Safari lack it. The `stream` transport needs it; `post` works everywhere.',
    todo: ['Use the `post` transport (H2WebSocket’s `auto` picks it by itself), or try in Chromium/Chrome/Edge.'],
  }),
  'cert-untrusted': () => ({
    level: 'warn',
    title: 'The browser does not trust this server’s certificate',
    what:
      'You reached this page through a certificate warning. The demo works for now only because of that exception: the browser forgets it when it restarts, refuses service workers from this origin, and other clients (curl, scripts, native apps) refuse the certificate outright.',
    todo: [
      'Start a throwaway Chromium that trusts exactly this certificate: `chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list=<hash> https://localhost:8443/`, where `<hash>` is the `spki-sha256` line the devserver prints at start, or',
      'trust the certificate the devserver generated (kept in its `--cert-dir`, by default a per-user cache directory) in your system or browser certificate store.',
    ],
  }),
  'server-gone': (d) => d.back ? ({
    level: 'info',
    title: 'The server is back',
    what: `${d.where}: a socket was lost earlier (close 1006); /.h2ws/stats answers again.`,
    todo: ['Reconnect: press Connect (chat) or Run / Start again.'],
  }) : ({
    level: 'error',
    title: d.probeOk ? 'A socket was cut (close 1006)' : 'The server is gone (close 1006)',
    what: d.probeOk
      ? `${d.where}: the socket ended without a Close frame (code 1006, wasClean = false), but the server answers /.h2ws/stats — it may have restarted, or a proxy or an idle timeout cut the socket.`
      : `${d.where}: the socket ended without a Close frame (code 1006, wasClean = false) and /.h2ws/stats does not answer either (${d.error}). The devserver stopped, or the network between you and it is down.`,
    todo: d.probeOk
      ? ['Reconnect (the buttons below work again).']
      : [`Start the server again: \`${SERVER_CMD}\`, then reconnect (no reload needed if the address stays the same).`],
  }),
  unreachable: (d) => ({
    level: 'error',
    title: 'Cannot reach the server',
    what: `GET /.h2ws/stats failed: ${d.error}. A page cannot tell a stopped server from a certificate the browser refuses: both are a plain network error.`,
    todo: [
      `Check that the devserver runs (\`${SERVER_CMD}\`) on this address.`,
      'If it does, the browser probably does not trust its certificate: open the server’s https:// address once and accept it, or use a throwaway Chromium with `--ignore-certificate-errors-spki-list=<hash>` (the `spki-sha256` line the server prints).',
    ],
  }),
};

const shown = new Map();

/** Shows (or updates) the banner `id`; `data` fills its text. */
export function showIssue(id, data = {}) {
  const spec = ISSUES[id](data);
  const box = $('#issues');
  const el = h(
    `div.issue.${spec.level}`,
    { role: spec.level === 'error' ? 'alert' : 'status', dataset: { issue: id } },
    h('div.issue-head', {}, h('strong', {}, spec.title), h('button.close', { type: 'button', 'aria-label': 'Dismiss', onclick: () => clearIssue(id) }, '×')),
    h('p', {}, rich(spec.what)),
    h('p.todo-label', {}, 'What to do'),
    h('ul', {}, spec.todo.map((t) => h('li', {}, rich(t)))),
  );
  const old = shown.get(id);
  if (old) old.replaceWith(el);
  else box.append(el);
  shown.set(id, el);
}

export function clearIssue(id) {
  shown.get(id)?.remove();
  shown.delete(id);
}

/**
 * Called when any socket of the page ends with 1006: probes the server and explains.
 * Debounced: several sockets dying at once give one banner.
 */
let pendingDiagnosis = null;
export function socketLost(where, wasOpen = true) {
  if (pendingDiagnosis) return pendingDiagnosis;
  pendingDiagnosis = (async () => {
    const probe = await probeServer();
    // A socket that never opened while the server answers is that socket's own failure (shown
    // where it happened), not a lost server.
    if (probe.ok && !wasOpen) return;
    showIssue('server-gone', { where, probeOk: probe.ok, error: probe.error?.message ?? '' });
    setFact('server', probe.ok ? 'answers' : 'not answering', probe.ok ? 'ok' : 'bad');
    if (!probe.ok) watchForServer(where);
  })().finally(() => setTimeout(() => (pendingDiagnosis = null), 1000));
  return pendingDiagnosis;
}

/** While the server is gone, asks every 2 s (for at most 10 min) whether it is back. */
let watching = 0;
function watchForServer(where) {
  if (watching) return;
  const until = Date.now() + 10 * 60_000;
  watching = setInterval(async () => {
    if (Date.now() > until || !shown.has('server-gone')) {
      clearInterval(watching);
      watching = 0;
      return;
    }
    const probe = await probeServer(1500);
    if (probe.ok && watching) {
      clearInterval(watching);
      watching = 0;
      showIssue('server-gone', { where, back: true });
      setFact('server', 'answers again', 'ok');
    }
  }, 2000);
}

/** A socket opened fine again: the server is back. */
export function socketBack() {
  if (shown.has('server-gone')) {
    clearIssue('server-gone');
    setFact('server', 'answers', 'ok');
  }
}
