// WebKit (WebKitGTK: the Safari engine) for the browser tests, driven through WebKitWebDriver
// (W3C WebDriver classic over HTTP) with MiniBrowser as the browser, under its own Xvfb.
//
// Measured on Debian's webkit2gtk 2.50.6 / webkit2gtk-driver 2.50.6:
// - MiniBrowser has no headless mode: it needs an X display (we start Xvfb, -displayfd picks a
//   free display number) and `--automation` in its args, or the session never starts.
// - WebDriver BiDi is not built in: a new-session request with `webSocketUrl: true` fails with
//   "session not created: Failed to match capabilities". So there is no log.entryAdded and no
//   script.addPreloadScript, and classic WebDriver has no console log.
// - `acceptInsecureCerts: true` is enough for the devserver's self-signed certificate.
// - No way to force HTTP/1.1: libsoup 3 negotiates h2 by ALPN and neither it nor WebKit nor
//   MiniBrowser has a switch to turn that off, so `launch({ http1: true })` is ignored (the
//   harness gives every engine HTTP/1.1 by serving the page over plain http://127.0.0.1).
//
// Console and page errors are captured in the page: a few lines of script wrap console.* and
// listen for `error` / `unhandledrejection` on window. The wrappers are installed right after
// each goto() and again (idempotently) at the start of every evaluate/waitForFunction/DOM helper,
// so a page that navigates by itself gets them back on the next call. Each call drains what the
// page collected into node-side lists, which console()/errors() return (accumulated, like
// Playwright's events; they survive navigations).
// THE GAP: console output and errors that happen while a document loads, before goto() returns
// (e.g. a module script that throws at import time), and in a document that navigated by itself
// until the next call into it, are not seen. There is no reliable way to run a script before the
// page's own with WebKitWebDriver 2.50: no BiDi preload scripts; MiniBrowser's
// --enable-write-console-messages-to-stdout prints nothing in automation mode (WebCore skips it
// for ephemeral sessions, which automation sessions are); and WEBKIT_INSPECTOR_HTTP_SERVER (the
// Web Inspector protocol, which buffers console messages) makes session creation hang.
// A failing test page import still shows: h2wsReady never becomes true and waitForFunction times
// out.
// goto() waits for the load event (pageLoadStrategy normal). A load that fails outright leaves
// WebKit on about:blank without any WebDriver error: goto() rejects then. An HTTP error status
// (404...) is a load like any other, as in Playwright.
//
// Pages: the first newPage() uses the session's initial window; later ones open their own
// MiniBrowser window (WebDriver "New Window", type 'window'; a tab in the background would be
// document.hidden, and a screenshot of it never returns). WebDriver has one current window per
// session, so a command for a page other than the current one waits until the commands in flight
// are done, then switches; commands for the same page run concurrently. page.close() closes the
// window, except the last one, which goes back to about:blank and is reused by the next newPage()
// (closing a session's last window would end the session).
//
// evaluate(fn, arg) runs `(fn)(arg)` through Execute Async Script (the session's script timeout
// is 300 s, launch({ scriptTimeout }) changes it), awaits a returned promise, and brings back
// JSON plus undefined, NaN, ±Infinity, -0, BigInt, Date, RegExp, URL, Error, Map, Set and typed
// arrays (a cycle comes back as '[Circular]', a DOM node as '[NODENAME]'). A function or promise
// that throws makes it reject with `page.evaluate: Name: message`. A string is evaluated as an
// expression (indirect eval, so not under a CSP without 'unsafe-eval').
// The DOM helpers run in the page (no actionability checks; they wait up to 30 s for the
// selector), except press(), which sends real keys with WebDriver Element Send Keys.
// launch() options: http1 (ignored), scriptTimeout, pageLoadTimeout (ms, default 120 s), args
// (more MiniBrowser arguments), env (for the driver and browser), binary (another MiniBrowser).
// H2WS_WEBKIT_DEBUG=1 logs every WebDriver command on stderr.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';

export const name = 'webkit';

const MINIBROWSER = process.env.WEBKIT_MINIBROWSER ?? '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';
const WEBDRIVER = process.env.WEBKIT_WEBDRIVER ?? 'WebKitWebDriver';
const XVFB = process.env.XVFB ?? 'Xvfb';

const DEBUG = !!process.env.H2WS_WEBKIT_DEBUG;
const debug = (...a) => { if (DEBUG) console.error(new Date().toISOString().slice(17, 23), '[webkit]', ...a); };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A free TCP port on 127.0.0.1 (closed again: the driver binds it right after). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Spawns `cmd` in its own process group (so its whole tree can be killed) and keeps its last output. */
function spawnGroup(cmd, args, options = {}) {
  const child = spawn(cmd, args, { detached: true, ...options });
  child.tail = [];
  const keep = (chunk) => {
    child.tail.push(chunk.toString());
    if (child.tail.length > 50) child.tail.splice(0, child.tail.length - 50);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.exited = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', (e) => { keep(String(e)); resolve(); });
  });
  return child;
}

function isRunning(child) {
  return child && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function killGroupNow(child, signal) {
  if (!child || child.pid === undefined) return;
  try { process.kill(-child.pid, signal); } catch { /* the group is gone */ }
}

/** SIGTERM to the child's process group, SIGKILL after `graceMs`; never hangs. */
async function stopGroup(child, graceMs = 3000) {
  if (!child || child.pid === undefined) return;
  debug('stopping', child.spawnfile, child.pid, isRunning(child) ? 'running' : 'exited');
  if (isRunning(child)) {
    killGroupNow(child, 'SIGTERM');
    await Promise.race([child.exited, sleep(graceMs)]);
    debug('after SIGTERM', child.pid, isRunning(child) ? 'running' : 'exited');
  }
  // Whatever is left of the group (the leader may have gone first): no mercy.
  killGroupNow(child, 'SIGKILL');
  await Promise.race([child.exited, sleep(2000)]);
  debug('after SIGKILL', child.pid, isRunning(child) ? 'running' : 'exited');
}

/** Live (not zombie) processes of process group `pgid`, leader excluded (Linux /proc). */
function groupMembers(pgid) {
  const found = [];
  let entries = [];
  try { entries = readdirSync('/proc'); } catch { return found; }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === pgid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') found.push(Number(entry));
    } catch { /* gone meanwhile */ }
  }
  return found;
}

/**
 * A tiny detached shell that SIGKILLs the given process groups once this node process is gone,
 * however it went (SIGKILL, a test runner's timeout...): no Xvfb or browser outlives the tests.
 */
function startWatchdog(pgids) {
  const script = 'alive() { s=$(sed "s/.*) //" /proc/$1/stat 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ]; }; '
    + 'p=$1; shift; while alive "$p"; do sleep 0.5; done; for g in "$@"; do kill -9 "-$g" 2>/dev/null; done';
  try {
    const child = spawn('sh', ['-c', script, 'h2ws-webkit-watchdog', String(process.pid), ...pgids.map(String)], {
      detached: true, stdio: 'ignore',
    });
    child.on('error', () => {});
    child.unref();
    return child;
  } catch {
    return null;
  }
}

/** Starts Xvfb on a free display; resolves with { child, display: ':N' }. */
async function startXvfb() {
  const child = spawnGroup(XVFB, ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  });
  try {
    const display = await new Promise((resolve, reject) => {
      let buffered = '';
      const timer = setTimeout(() => reject(new Error('Xvfb did not report a display in 15 s')), 15000);
      child.stdio[3].on('data', (chunk) => {
        buffered += chunk.toString();
        const m = buffered.match(/^(\d+)\n/);
        if (m) { clearTimeout(timer); resolve(`:${m[1]}`); }
      });
      child.exited.then(() => { clearTimeout(timer); reject(new Error(`Xvfb exited: ${child.tail.join('')}`)); });
    });
    child.stdio[3].destroy();
    return { child, display };
  } catch (e) {
    await stopGroup(child);
    throw e;
  }
}

class WebDriverError extends Error {
  constructor(method, path, status, value) {
    super(`WebDriver ${method} ${path}: ${value?.error ?? `HTTP ${status}`}: ${value?.message ?? JSON.stringify(value)}`);
    this.name = 'WebDriverError';
    this.error = value?.error;
  }
}

/**
 * One JSON request to the driver. node:http, not fetch(): undici's fetch gives up on a response
 * after 300 s of waiting for headers, and an evaluate may take that long.
 */
function request(agent, port, method, path, body, { timeout = 0 } = {}) {
  debug('->', method, path);
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({
      host: '127.0.0.1', port, method, path, agent,
      headers: { 'content-type': 'application/json; charset=utf-8', ...(data ? { 'content-length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let parsed;
        try { parsed = JSON.parse(Buffer.concat(chunks).toString() || '{}'); } catch (e) {
          reject(new Error(`WebDriver ${method} ${path}: bad JSON (${e.message})`));
          return;
        }
        if (res.statusCode >= 400) {
          reject(new WebDriverError(method, path, res.statusCode, parsed.value));
        } else {
          resolve(parsed.value);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (timeout > 0) {
      req.setTimeout(timeout, () => req.destroy(new Error(`WebDriver ${method} ${path}: no answer in ${timeout} ms`)));
    }
    req.end(data);
  });
}

// ---------------------------------------------------------------------------------------------
// Page-side code. These functions are sent as source text; they must not close over anything.

/** Installs the console/error capture once per document; returns the buffer. */
function pageInstall() {
  const KEY = '__h2wsCapture';
  if (window[KEY]) return window[KEY];
  const cap = { console: [], errors: [] };
  Object.defineProperty(window, KEY, { value: cap, enumerable: false, configurable: true, writable: false });
  const one = (v) => {
    if (typeof v === 'string') return v;
    if (v instanceof Error) return String(v);
    if (typeof v === 'bigint') return `${v}n`;
    if (v === null || typeof v !== 'object') return String(v);
    try {
      const json = JSON.stringify(v);
      return json === undefined ? String(v) : json;
    } catch {
      return String(v);
    }
  };
  const format = (args) => {
    const rest = args.slice();
    let head = '';
    if (typeof rest[0] === 'string' && rest[0].includes('%')) {
      head = rest.shift().replace(/%[sdifoOc%]/g, (spec) => {
        if (spec === '%%') return '%';
        if (rest.length === 0) return spec;
        const v = rest.shift();
        switch (spec) {
          case '%c': return '';
          case '%d': case '%i': return String(parseInt(v, 10));
          case '%f': return String(parseFloat(v));
          default: return one(v);
        }
      });
      return [head, ...rest.map(one)].join(' ');
    }
    return rest.map(one).join(' ');
  };
  const types = { log: 'log', warn: 'warning', error: 'error', info: 'info', debug: 'debug', trace: 'trace', dir: 'dir', table: 'table' };
  for (const [method, type] of Object.entries(types)) {
    const original = console[method];
    if (typeof original !== 'function') continue;
    console[method] = function (...args) {
      try { cap.console.push(`${type}: ${format(args)}`); } catch { /* never break the page */ }
      return original.apply(this, args);
    };
  }
  const originalAssert = console.assert;
  if (typeof originalAssert === 'function') {
    console.assert = function (condition, ...args) {
      if (!condition) {
        try { cap.console.push(`assert: ${args.length ? format(args) : 'console.assert'}`); } catch { /* ignore */ }
      }
      return originalAssert.call(this, condition, ...args);
    };
  }
  const describe = (e) => {
    try { return e instanceof Error ? String(e) : (typeof e === 'string' ? e : one(e)); } catch { return 'unprintable error'; }
  };
  window.addEventListener('error', (event) => {
    if (!(event instanceof ErrorEvent)) return; // resource load failures
    cap.errors.push(event.error !== undefined && event.error !== null ? describe(event.error) : event.message);
  });
  window.addEventListener('unhandledrejection', (event) => cap.errors.push(describe(event.reason)));
  return cap;
}

/** Encodes a value for the trip through WebDriver's JSON (undefined, NaN, -0, Date, BigInt, Map...). */
function pageEncode(value) {
  const T = '__h2ws_t';
  const seen = new Set();
  const enc = (v) => {
    switch (typeof v) {
      case 'undefined': return { [T]: 'undefined' };
      case 'number':
        if (Number.isNaN(v)) return { [T]: 'NaN' };
        if (v === Infinity) return { [T]: 'Infinity' };
        if (v === -Infinity) return { [T]: '-Infinity' };
        if (Object.is(v, -0)) return { [T]: '-0' };
        return v;
      case 'bigint': return { [T]: 'bigint', v: String(v) };
      case 'string': case 'boolean': return v;
      case 'function': case 'symbol': return { [T]: 'undefined' };
      default: break;
    }
    if (v === null) return null;
    if (seen.has(v)) return { [T]: 'circular' };
    seen.add(v);
    try {
      if (v instanceof Date) return { [T]: 'date', v: v.getTime() };
      if (v instanceof RegExp) return { [T]: 'regexp', source: v.source, flags: v.flags };
      if (v instanceof Error) return { [T]: 'error', name: v.name, message: v.message, stack: v.stack };
      if (typeof URL !== 'undefined' && v instanceof URL) return { [T]: 'url', v: v.href };
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
        const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
        let bin = '';
        for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        return { [T]: 'typed', kind: v.constructor.name, b64: btoa(bin) };
      }
      if (v instanceof Map) return { [T]: 'map', v: [...v].map(([k, x]) => [enc(k), enc(x)]) };
      if (v instanceof Set) return { [T]: 'set', v: [...v].map(enc) };
      if (typeof Node !== 'undefined' && v instanceof Node) return { [T]: 'node', v: v.nodeName };
      if (Array.isArray(v)) return v.map(enc);
      const out = {};
      for (const k of Object.keys(v)) out[k] = enc(v[k]);
      return out;
    } finally {
      seen.delete(v);
    }
  };
  return enc(value);
}

/** Waits until `document.querySelector(selector)` finds something; rejects after `timeout` ms. */
async function pageQuery(selector, timeout) {
  const deadline = performance.now() + timeout;
  for (;;) {
    const el = document.querySelector(selector);
    if (el) return el;
    if (performance.now() > deadline) throw new Error(`no element matches ${JSON.stringify(selector)} after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Node side: turns pageEncode's output back into values. */
function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v === null || typeof v !== 'object') return v;
  const t = v.__h2ws_t;
  if (t === undefined) {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = decode(x);
    return out;
  }
  switch (t) {
    case 'undefined': return undefined;
    case 'NaN': return NaN;
    case 'Infinity': return Infinity;
    case '-Infinity': return -Infinity;
    case '-0': return -0;
    case 'bigint': return BigInt(v.v);
    case 'date': return new Date(v.v);
    case 'regexp': return new RegExp(v.source, v.flags);
    case 'url': return new URL(v.v);
    case 'error': { const e = new Error(v.message); e.name = v.name; e.stack = `${v.name}: ${v.message}\n${v.stack ?? ''}`; return e; }
    case 'typed': {
      const bytes = Buffer.from(v.b64, 'base64');
      const Ctor = globalThis[v.kind];
      if (typeof Ctor !== 'function' || !Ctor.BYTES_PER_ELEMENT) return new Uint8Array(bytes);
      const copy = new ArrayBuffer(bytes.length);
      new Uint8Array(copy).set(bytes);
      return new Ctor(copy);
    }
    case 'map': return new Map(v.v.map(([k, x]) => [decode(k), decode(x)]));
    case 'set': return new Set(v.v.map(decode));
    case 'circular': return '[Circular]';
    case 'node': return `[${v.v}]`;
    default: return v;
  }
}

/**
 * The Execute Async Script body that runs `body` (the source of an async function taking
 * (arg, hasArg) and returning a value) with the capture installed, and reports
 * { ok, value | error, console, errors } through the WebDriver callback.
 */
function asyncScript(body) {
  return `
const done = arguments[arguments.length - 1];
const hasArg = arguments.length > 1;
const arg = hasArg ? arguments[0] : undefined;
const install = (${pageInstall});
const encode = (${pageEncode});
const query = (${pageQuery});
let cap = null;
try { cap = install(); } catch (e) { /* the capture is best effort */ }
const drain = () => cap ? { console: cap.console.splice(0), errors: cap.errors.splice(0) } : { console: [], errors: [] };
const describe = (e) => {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: String(e.stack || '') };
  let text;
  try { text = typeof e === 'string' ? e : JSON.stringify(e); } catch (_) { text = undefined; }
  return { name: 'Thrown', message: text === undefined ? String(e) : text, stack: '' };
};
(async () => { ${body} })().then(
  (value) => {
    let encoded;
    try { encoded = encode(value); } catch (e) { done({ ok: false, fail: describe(e), ...drain() }); return; }
    done({ ok: true, value: encoded, ...drain() });
  },
  (e) => done({ ok: false, fail: describe(e), ...drain() }),
);`;
}

/**
 * Script text defining `invoke()`, which calls the page function with the argument (or, for a
 * string, evaluates the expression, Playwright-like: if that gives a function, it is called).
 */
function callerSource(fn) {
  if (typeof fn === 'function') {
    let src = fn.toString();
    // `async foo() {}` / `foo() {}` (a method) is no expression: make it a function one.
    const method = src.match(/^(async\s+)?(?!function\b)([\w$]+)\s*\(/);
    if (method && !/^(async\s*)?\(/.test(src) && !/^(async\s+)?[\w$]+\s*=>/.test(src)) {
      src = `${method[1] ?? ''}function ${src.slice(method[1]?.length ?? 0)}`;
    }
    return `const target = (${src});\nconst invoke = () => (hasArg ? target(arg) : target());`;
  }
  if (typeof fn === 'string') {
    return `const invoke = () => { const v = (0, eval)(${JSON.stringify(fn)}); return typeof v === 'function' ? (hasArg ? v(arg) : v()) : v; };`;
  }
  throw new TypeError(`evaluate: expected a function or a string, got ${typeof fn}`);
}

// ---------------------------------------------------------------------------------------------

/** Launches Xvfb + WebKitWebDriver + a MiniBrowser session. */
export async function launch(options = {}) {
  // options.http1: WebKitGTK has no way to refuse HTTP/2 (see the top of this file): ignored.
  const scriptTimeout = options.scriptTimeout ?? 300000;
  const pageLoadTimeout = options.pageLoadTimeout ?? 120000;
  const started = [];
  let xvfb;
  let driver;
  let port;
  let watchdog = null;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const killAllNow = () => { for (const c of started) killGroupNow(c, 'SIGKILL'); };
  process.once('exit', killAllNow);

  try {
    const x = await startXvfb();
    xvfb = x.child;
    xvfb.display = x.display;
    started.push(xvfb);

    // The driver, on a free loopback port (a race for the port is retried).
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      driver = spawnGroup(WEBDRIVER, [`--port=${port}`, '--host=127.0.0.1'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          DISPLAY: xvfb.display,
          GDK_BACKEND: 'x11',
          NO_AT_BRIDGE: '1', // no accessibility bus
          WAYLAND_DISPLAY: '',
          ...options.env,
        },
      });
      started.push(driver);
      const deadline = Date.now() + 10000;
      let ready = false;
      while (!ready && isRunning(driver) && Date.now() < deadline) {
        ready = await request(agent, port, 'GET', '/status', undefined, { timeout: 1000 }).then((v) => v?.ready !== false, () => false);
        if (!ready) await sleep(50);
      }
      if (ready) break;
      await stopGroup(driver);
      if (attempt >= 3) throw new Error(`WebKitWebDriver did not start: ${driver.tail.join('')}`);
    }

    watchdog = startWatchdog([xvfb.pid, driver.pid]);
    if (watchdog) started.push(watchdog);

    const session = await request(agent, port, 'POST', '/session', {
      capabilities: {
        alwaysMatch: {
          acceptInsecureCerts: true,
          pageLoadStrategy: 'normal',
          unhandledPromptBehavior: 'accept',
          timeouts: { script: scriptTimeout, pageLoad: pageLoadTimeout, implicit: 0 },
          'webkitgtk:browserOptions': {
            binary: options.binary ?? MINIBROWSER,
            args: ['--automation', ...(options.args ?? [])],
          },
        },
      },
    }, { timeout: 60000 }).catch((e) => {
      throw new Error(`${e.message}\n${driver.tail.join('')}`);
    });
    return makeBrowser({ agent, port, sessionId: session.sessionId, capabilities: session.capabilities, xvfb, driver, watchdog, killAllNow });
  } catch (e) {
    process.off('exit', killAllNow);
    for (const c of started.reverse()) await stopGroup(c);
    agent.destroy();
    throw e;
  }
}

function makeBrowser({ agent, port, sessionId, capabilities, xvfb, driver, watchdog, killAllNow }) {
  const base = `/session/${sessionId}`;
  const cmd = (method, path, body, opts) => request(agent, port, method, base + path, body, opts);

  // The current WebDriver window, and who is using it.
  let current = null;
  let inflight = 0;
  let switching = false;
  const waiters = [];
  let closed = null;

  function pump() {
    if (inflight > 0 || switching || waiters.length === 0) return;
    const { handle } = waiters[0];
    if (current !== handle) {
      switching = true;
      cmd('POST', '/window', { handle }).then(
        () => { current = handle; switching = false; pump(); },
        (e) => {
          switching = false;
          for (let i = waiters.length - 1; i >= 0; i--) {
            if (waiters[i].handle === handle) waiters.splice(i, 1)[0].reject(e);
          }
          pump();
        },
      );
      return;
    }
    for (let i = 0; i < waiters.length;) {
      if (waiters[i].handle === current) { inflight++; waiters.splice(i, 1)[0].resolve(); } else i++;
    }
  }

  /** Runs fn() with `handle` as the session's current window. */
  async function inWindow(handle, fn) {
    if (closed) throw new Error('webkit: the browser is closed');
    if (current === handle && waiters.length === 0 && !switching) {
      inflight++;
    } else {
      await new Promise((resolve, reject) => { waiters.push({ handle, resolve, reject }); pump(); });
    }
    try {
      return await fn();
    } finally {
      inflight--;
      pump();
    }
  }

  const pages = new Map(); // handle → open page
  let spare = null; // a window kept after its page closed (the session's last one)
  let initialHandle = null;

  async function newPage() {
    if (closed) throw new Error('webkit: the browser is closed');
    let handle;
    if (spare) {
      const { handle: kept, ready } = spare;
      spare = null;
      await ready;
      handle = kept;
    } else if (initialHandle === null) {
      handle = initialHandle = await cmd('GET', '/window');
      current = handle;
    } else {
      // New Window needs the current window to be open: run it in a page's window.
      const anchor = pages.keys().next().value;
      ({ handle } = await inWindow(anchor, () => cmd('POST', '/window/new', { type: 'window' })));
    }
    const page = makePage(handle);
    pages.set(handle, page);
    return page;
  }

  function makePage(handle) {
    const consoleLines = [];
    const pageErrors = [];
    let pageClosed = false;
    const absorb = (r) => {
      if (r && Array.isArray(r.console)) consoleLines.push(...r.console);
      if (r && Array.isArray(r.errors)) pageErrors.push(...r.errors);
    };
    const check = () => { if (pageClosed) throw new Error('webkit: the page is closed'); };

    /** Runs an async-function body in the page; resolves with its decoded value. */
    async function run(body, args, what) {
      check();
      const r = await inWindow(handle, () => cmd('POST', '/execute/async', { script: asyncScript(body), args }));
      absorb(r);
      if (!r || typeof r !== 'object' || !('ok' in r)) throw new Error(`${what}: unexpected answer ${JSON.stringify(r)}`);
      if (!r.ok) {
        const e = new Error(`${what}: ${r.fail.name}: ${r.fail.message}`);
        e.pageError = r.fail;
        if (r.fail.stack) e.stack = `${e.message}\n    -- in the page --\n${r.fail.stack}`;
        throw e;
      }
      return decode(r.value);
    }

    const argList = (arg) => (arg === undefined ? [] : [arg]);

    const page = {
      async goto(url) {
        check();
        await inWindow(handle, () => cmd('POST', '/url', { url }));
        // Capture from here on (see the gap at the top of this file).
        const r = await inWindow(handle, () => cmd('POST', '/execute/async', { script: asyncScript('return location.href;'), args: [] }));
        absorb(r);
        // A load that fails (connection refused, TLS...) leaves WebKit on about:blank, and WebDriver
        // says nothing: make it an error, as Playwright does.
        const href = r?.ok ? r.value : undefined;
        if (href === 'about:blank' && !/^about:/.test(url)) throw new Error(`page.goto: loading ${url} failed (the page is ${href})`);
      },

      evaluate(fn, arg) {
        return run(`${callerSource(fn)}\nreturn await invoke();`, argList(arg), 'page.evaluate');
      },

      async waitForFunction(fn, arg, { timeout = 30000, polling = 50 } = {}) {
        check();
        const deadline = Date.now() + timeout;
        const body = (left) => `${callerSource(fn)}
          const until = performance.now() + ${left};
          for (;;) {
            if (await invoke()) return true;
            if (performance.now() > until) return false;
            await new Promise((r) => setTimeout(r, ${Number(polling) || 50}));
          }`;
        let lastError;
        while (Date.now() < deadline) {
          const left = Math.max(0, deadline - Date.now());
          try {
            // A page too busy to answer must not outlast the timeout either.
            let timer;
            const late = new Promise((resolve) => { timer = setTimeout(() => resolve(false), left + 2000); });
            const done = await Promise.race([run(body(left), argList(arg), 'page.waitForFunction'), late]).finally(() => clearTimeout(timer));
            if (done) return;
            lastError = undefined;
          } catch (e) {
            if (e.pageError) throw e; // the predicate threw: like Playwright, fail now
            lastError = e; // a navigation cut the script short, or similar: poll again
            await sleep(100);
          }
        }
        const e = new Error(`page.waitForFunction: timed out after ${timeout} ms${lastError ? ` (last: ${lastError.message})` : ''}`);
        e.name = 'TimeoutError';
        throw e;
      },

      async screenshot({ path } = {}) {
        check();
        const b64 = await inWindow(handle, () => cmd('GET', '/screenshot'));
        const png = Buffer.from(b64, 'base64');
        if (path) await writeFile(path, png);
        return png;
      },

      async console() {
        if (!pageClosed && !closed) await run('return null;', [], 'page.console').catch(() => {});
        return consoleLines.slice();
      },

      async errors() {
        if (!pageClosed && !closed) await run('return null;', [], 'page.errors').catch(() => {});
        return pageErrors.slice();
      },

      // DOM helpers, in the page (no interactability checks; they wait up to 30 s for the element).
      click(selector, { timeout = 30000 } = {}) {
        return run(`const el = await query(arg, ${timeout}); el.scrollIntoView({ block: 'center', inline: 'center' });
          if (typeof el.click === 'function') el.click();
          else el.dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, view: window }));
          return null;`, [selector], 'page.click');
      },
      fill(selector, value, { timeout = 30000 } = {}) {
        return run(`const [sel, value] = arg; const el = await query(sel, ${timeout}); el.focus();
          if (el.isContentEditable) el.textContent = value;
          else {
            const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : el instanceof HTMLSelectElement ? HTMLSelectElement.prototype : HTMLInputElement.prototype;
            const setter = Object.getOwnPropertyDescriptor(proto, 'value').set;
            setter.call(el, value);
          }
          el.dispatchEvent(new InputEvent('input', { bubbles: true, composed: true, inputType: 'insertText', data: value }));
          el.dispatchEvent(new Event('change', { bubbles: true }));
          return null;`, [[selector, String(value)]], 'page.fill');
      },
      selectOption(selector, value, { timeout = 30000 } = {}) {
        const wanted = Array.isArray(value) ? value : [value];
        return run(`const [sel, wanted] = arg; const el = await query(sel, ${timeout});
          if (!(el instanceof HTMLSelectElement)) throw new Error('not a <select>: ' + sel);
          const want = wanted.map((w) => (w && typeof w === 'object') ? w : { value: w, label: w });
          const matches = (o) => want.some((w) => (w.value !== undefined && o.value === w.value) || (w.label !== undefined && o.label === w.label) || (w.index !== undefined && o.index === w.index));
          const picked = [...el.options].filter(matches);
          if (picked.length === 0) throw new Error('no option matches ' + JSON.stringify(wanted));
          for (const o of el.options) o.selected = el.multiple ? matches(o) : o === picked[0];
          el.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
          el.dispatchEvent(new Event('change', { bubbles: true }));
          return [...el.selectedOptions].map((o) => o.value);`, [[selector, wanted]], 'page.selectOption');
      },
      check(selector, { timeout = 30000 } = {}) {
        return run(`const el = await query(arg, ${timeout});
          if (!el.checked) el.click();
          if (!el.checked) throw new Error('clicking did not check ' + arg);
          return null;`, [selector], 'page.check');
      },
      uncheck(selector, { timeout = 30000 } = {}) {
        return run(`const el = await query(arg, ${timeout});
          if (el.checked) el.click();
          if (el.checked) throw new Error('clicking did not uncheck ' + arg);
          return null;`, [selector], 'page.uncheck');
      },
      /** Real key events through WebDriver Element Send Keys (so Enter submits a form, etc.). */
      async press(selector, key, { timeout = 30000 } = {}) {
        check();
        await run(`await query(arg, ${timeout}); return null;`, [selector], 'page.press');
        await inWindow(handle, async () => {
          const found = await cmd('POST', '/element', { using: 'css selector', value: selector });
          const id = found[Object.keys(found).find((k) => k.startsWith('element-')) ?? Object.keys(found)[0]];
          await cmd('POST', `/element/${id}/value`, { text: keySequence(key) });
        });
      },
      textContent(selector, { timeout = 30000 } = {}) {
        return run(`const el = await query(arg, ${timeout}); return el.textContent;`, [selector], 'page.textContent');
      },
      getAttribute(selector, attribute, { timeout = 30000 } = {}) {
        return run(`const [sel, name] = arg; const el = await query(sel, ${timeout}); return el.getAttribute(name);`, [[selector, attribute]], 'page.getAttribute');
      },

      async close() {
        if (pageClosed) return;
        pageClosed = true;
        pages.delete(handle);
        if (closed) return;
        if (pages.size === 0) {
          // The session's last window: keep it (blank) for the next newPage().
          const ready = inWindow(handle, () => cmd('POST', '/url', { url: 'about:blank' })).catch(() => {});
          spare = { handle, ready };
          await ready;
        } else {
          await inWindow(handle, async () => {
            await cmd('DELETE', '/window');
            current = null;
          }).catch(() => {});
        }
      },

      /** WebDriver details, for debugging. */
      raw: { port, sessionId, handle, command: (method, path, body) => inWindow(handle, () => cmd(method, path, body)) },
    };
    return page;
  }

  return {
    name,
    capabilities,
    newPage,
    /** Ends the session, the driver (and with it MiniBrowser) and Xvfb; never hangs. */
    close() {
      closed ??= (async () => {
        for (const w of waiters.splice(0)) w.reject(new Error('webkit: the browser is closed'));
        let ended = false;
        if (isRunning(driver)) {
          // The driver quits MiniBrowser and reaps it; wait for that (the WebKit processes go
          // with it) before ending the driver, so nothing is left to the init process.
          ended = await cmd('DELETE', '', undefined, { timeout: 5000 }).then(() => true, (e) => { debug('DELETE session:', e.message); return false; });
          const deadline = Date.now() + (ended ? 2000 : 0);
          while (Date.now() < deadline && groupMembers(driver.pid).length > 0) await sleep(50);
        }
        await stopGroup(driver, ended ? 3000 : 1000);
        await stopGroup(xvfb);
        if (watchdog) killGroupNow(watchdog, 'SIGKILL');
        agent.destroy();
        process.off('exit', killAllNow);
      })();
      return closed;
    },
  };
}

/** A Playwright key name ('Enter', 'Control+a', 'x') as WebDriver key codes. */
function keySequence(key) {
  const KEYS = {
    Enter: '\uE007', Tab: '\uE004', Escape: '\uE00C', Backspace: '\uE003', Delete: '\uE017',
    ArrowLeft: '\uE012', ArrowUp: '\uE013', ArrowRight: '\uE014', ArrowDown: '\uE015',
    Home: '\uE011', End: '\uE010', PageUp: '\uE00E', PageDown: '\uE00F', Insert: '\uE016',
    Space: ' ', Shift: '\uE008', Control: '\uE009', Alt: '\uE00A', Meta: '\uE03D',
    F1: '\uE031', F2: '\uE032', F3: '\uE033', F4: '\uE034', F5: '\uE035', F6: '\uE036',
    F7: '\uE037', F8: '\uE038', F9: '\uE039', F10: '\uE03A', F11: '\uE03B', F12: '\uE03C',
  };
  const parts = key.length > 1 && key.includes('+') ? key.split('+') : [key];
  const seq = parts.map((p) => KEYS[p] ?? p).join('');
  return parts.length > 1 ? `${seq}\uE000` : seq; // NULL releases the modifiers
}
