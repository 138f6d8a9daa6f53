// Firefox engine adapter: Debian's firefox-esr driven from node over WebDriver BiDi with
// puppeteer-core (no geckodriver, no browser download). Exposes the small Playwright-shaped
// surface the browser tests use; `page.raw` is the puppeteer Page for anything else.
//
//   const browser = await launch({ http1: false, prefs: {} });
//   const page = await browser.newPage();
//   await page.goto(`${origin}/index.html`);
//   await page.waitForFunction(() => window.h2wsReady === true, null, { timeout: 60000 });
//   await page.evaluate(async (x) => x + 1, 1);
//   await browser.close();
//
// Each page is a window of its own; the launch's initial about:blank window stays open (it keeps
// Firefox up when every page is closed). console() and errors() keep a page's lines from the
// moment newPage() made it, its frames and workers included.
//
// Environment: FIREFOX overrides the executable (default /usr/bin/firefox-esr, then firefox);
// H2WS_FIREFOX_DUMPIO=1 copies Firefox's stdout/stderr to this process's.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

export const name = 'firefox';

const DEFAULT_TIMEOUT = 30000;

/** The Firefox binary: $FIREFOX, Debian's firefox-esr, or firefox. */
export function executablePath() {
  const candidates = [process.env.FIREFOX, '/usr/bin/firefox-esr', '/usr/bin/firefox'].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`Firefox not found (tried ${candidates.join(', ')}); apt-get install firefox-esr`);
  return found;
}

// Written to the fresh profile's user.js, so they hold from start-up on (puppeteer adds its own
// automation defaults, and Firefox's Remote Agent applies its recommended prefs after start-up;
// these come first and win). The machine has no network: every background service that would
// dial out is switched off or pointed nowhere, so it cannot add delays, retries or noise.
const NOWHERE = 'data:,';
export const PREFS = {
  // Updates (application, add-ons, system add-ons, search engines, GMP plugins, UA overrides).
  'app.update.disabledForTesting': true,
  'app.update.auto': false,
  'app.update.checkInstallTime': false,
  'app.update.staging.enabled': false,
  'app.update.url': '',
  'extensions.update.enabled': false,
  'extensions.update.autoUpdateDefault': false,
  'extensions.systemAddon.update.enabled': false,
  'extensions.systemAddon.update.url': '',
  'extensions.getAddons.cache.enabled': false,
  'extensions.getAddons.discovery.api_url': NOWHERE,
  'extensions.webservice.discoverURL': NOWHERE,
  'extensions.blocklist.enabled': false,
  'extensions.installDistroAddons': false,
  'browser.search.update': false,
  'browser.region.update.enabled': false,
  'browser.region.network.url': '',
  'general.useragent.updates.enabled': false,
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-manager.url': NOWHERE,
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-widevinecdm.enabled': false,
  // Telemetry, health report, studies, experiments (Normandy, Nimbus), crash reports.
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.archive.enabled': false,
  'toolkit.telemetry.server': NOWHERE,
  'toolkit.telemetry.newProfilePing.enabled': false,
  'toolkit.telemetry.shutdownPingSender.enabled': false,
  'toolkit.telemetry.firstShutdownPing.enabled': false,
  'toolkit.telemetry.updatePing.enabled': false,
  'toolkit.telemetry.bhrPing.enabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'toolkit.coverage.opt-out': true,
  'toolkit.coverage.endpoint.base': '',
  'telemetry.fog.test.localhost_port': -1,
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.policy.dataSubmissionPolicyBypassNotification': true,
  'datareporting.usage.uploadEnabled': false,
  'app.normandy.enabled': false,
  'app.normandy.api_url': '',
  'app.shield.optoutstudies.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'browser.ping-centre.telemetry': false,
  'browser.tabs.crashReporting.sendReport': false,
  'browser.crashReports.unsubmittedCheck.enabled': false,
  // Remote Settings (blocklists, intermediates, CRLite, experiments' recipes).
  'services.settings.server': 'data:,#remote-settings-dummy/v1',
  'services.settings.loglevel': 'off',
  'security.remote_settings.intermediates.enabled': false,
  'security.remote_settings.crlite_filters.enabled': false,
  // Network probes and guesses: captive portal, connectivity, DoH, proxies, prefetch, SNTP.
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.trr.mode': 5,
  'doh-rollout.disable-heuristics': true,
  'network.proxy.type': 0,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.predictor.enable-prefetch': false,
  'network.http.speculative-parallel-limit': 0,
  'browser.urlbar.speculativeConnect.enabled': false,
  'network.sntp.pools': '',
  'network.http.http3.enable': false,
  'security.OCSP.enabled': 0,
  'security.certerrors.mitm.priming.enabled': false,
  // Safe Browsing and tracking-protection list downloads.
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.downloads.remote.enabled': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.google.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'privacy.trackingprotection.enabled': false,
  // Push, sync, accounts, geolocation, new-tab feeds, ML and translation models, quick suggest.
  'dom.push.enabled': false,
  'dom.push.connection.enabled': false,
  'dom.push.serverURL': '',
  'identity.fxaccounts.enabled': false,
  'geo.provider.network.url': '',
  'browser.newtabpage.enabled': false,
  'browser.newtabpage.activity-stream.feeds.system.topstories': false,
  'browser.newtabpage.activity-stream.feeds.section.topstories': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'browser.newtabpage.activity-stream.showSponsoredTopSites': false,
  'browser.newtabpage.activity-stream.testing.shouldInitializeFeeds': false,
  'browser.topsites.contile.enabled': false,
  'browser.ml.enable': false,
  'places.semanticHistory.featureGate': false,
  'browser.translations.enable': false,
  'browser.urlbar.quicksuggest.enabled': false,
  'browser.urlbar.suggest.searches': false,
  'browser.discovery.enabled': false,
  'browser.backup.enabled': false,
  // A quiet, blank start.
  'browser.startup.page': 0,
  'browser.startup.homepage': 'about:blank',
  'browser.shell.checkDefaultBrowser': false,
  'termsofuse.bypassNotification': true,
  // Each page is a window of its own, so all are visible (as Playwright's Chromium pages are);
  // should one be hidden anyway, its timers and loads are not throttled.
  'dom.min_background_timeout_value': 4,
  'dom.min_background_timeout_value_without_budget_throttling': 4,
  'dom.timeout.enable_budget_timer_throttling': false,
  'dom.ipc.processPriorityManager.enabled': false,
  'network.http.throttle.enable': false,
  // Two cores: no spare content process started ahead of need.
  'dom.ipc.processPrelaunch.enabled': false,
};

/**
 * Starts headless Firefox with a fresh temporary profile (and HOME) that close() removes.
 * options.http1: HTTP/2 off (network.http.http2.enabled false): pages use HTTP/1.1.
 * options.prefs: more prefs (win over the defaults). options.dumpio: Firefox output to ours.
 * options.env: environment changes for Firefox (a null value removes the variable, e.g.
 * { MOZ_DISABLE_NONLOCAL_CONNECTIONS: null }). options.executablePath, options.args,
 * options.timeout (launch, ms), options.protocolTimeout (one BiDi command, ms).
 */
export async function launch(options = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'h2ws-firefox-'));
  const profile = path.join(dir, 'profile');
  const home = path.join(dir, 'home');
  mkdirSync(profile);
  mkdirSync(home);
  const prefs = {
    ...PREFS,
    ...(options.http1 ? { 'network.http.http2.enabled': false } : {}),
    ...options.prefs,
  };
  const env = {
    ...process.env,
    HOME: home,
    XDG_CACHE_HOME: path.join(home, '.cache'),
    XDG_CONFIG_HOME: path.join(home, '.config'),
    MOZ_HEADLESS: '1',
    MOZ_CRASHREPORTER_DISABLE: '1',
    // Mozilla's test-harness switch. Host names other than localhost's do not resolve (no DNS
    // query leaves the machine), and on ESR/release it is what makes Firefox honour the
    // services.settings.server override (else Remote Settings and Nimbus look up their hosts).
    // Beware: a connection to a non-loopback IP literal then aborts Firefox (as in Mozilla's CI).
    MOZ_DISABLE_NONLOCAL_CONNECTIONS: '1',
  };
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  const entry = { proc: null, dir };
  live.add(entry);
  watchSignals();
  let raw;
  try {
    raw = await puppeteer.launch({
      browser: 'firefox',
      executablePath: options.executablePath ?? executablePath(),
      headless: true,
      userDataDir: profile,
      extraPrefsFirefox: prefs,
      acceptInsecureCerts: true,
      // No BiDi network events (puppeteer subscribes by default and adds 20 MB body collectors):
      // they made every fetch() 2-3x slower (post RTT p50 7.4-9.5 ms with, 2.9-4.3 ms without)
      // and the tests do not read requests in Firefox. `options.network: true` turns them on.
      networkEnabled: options.network ?? false,
      defaultViewport: { width: 1280, height: 720 },
      args: options.args ?? [],
      env,
      dumpio: options.dumpio ?? process.env.H2WS_FIREFOX_DUMPIO === '1',
      timeout: options.timeout ?? 60000,
      protocolTimeout: options.protocolTimeout ?? 180000,
      // Our own handlers (below) kill Firefox and then let the signal end this process;
      // puppeteer's would swallow SIGTERM/SIGHUP. Its 'exit' hook still kills Firefox.
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
    });
  } catch (e) {
    live.delete(entry);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const proc = raw.process();
  entry.proc = proc;
  const exited = new Promise((resolve) => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', resolve);
  });
  let closing;
  return {
    name,
    raw,
    /** A new page in a window of its own (visible: timers and rAF run at full rate). */
    async newPage() {
      return wrapPage(await raw.newPage({ type: 'window' }), raw.connection);
    },
    /**
     * Quits Firefox (BiDi browser.close; after 10 s, or if the process lingers 2 s more, SIGKILL
     * to its process group, content processes included) and removes profile and HOME. Never hangs.
     */
    close() {
      closing ??= (async () => {
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());
        await Promise.race([raw.close().catch(() => {}), sleep(10000)]);
        await Promise.race([exited, sleep(2000)]);
        killGroup(proc);
        await Promise.race([exited, sleep(5000)]);
        killGroup(proc);
        live.delete(entry);
        for (let i = 0; i < 5; i++) {
          try { rmSync(dir, { recursive: true, force: true }); break; } catch { await sleep(200); }
        }
      })();
      return closing;
    },
  };
}

/** Firefox runs in a process group of its own: SIGKILL to the group takes every process of it. */
function killGroup(proc) {
  if (!proc?.pid) return;
  try { process.kill(-proc.pid, 'SIGKILL'); } catch {}
  try { proc.kill('SIGKILL'); } catch {}
}

// Browsers not closed yet: killed (and their directories removed) should node exit or be
// signalled first, so no Firefox outlives the test process.
const live = new Set();
let watching = false;
function killAll() {
  for (const { proc, dir } of live) {
    killGroup(proc);
    try { rmSync(dir, { recursive: true, force: true }); } catch {}
  }
  live.clear();
}
function watchSignals() {
  if (watching) return;
  watching = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      killAll();
      process.off(signal, onSignal);
      // Nobody else handles it: die of the signal, as without this handler.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// Console method (BiDi log entry) → Playwright's console message type.
const CONSOLE_TYPE = {
  warn: 'warning', group: 'startGroup', groupCollapsed: 'startGroupCollapsed', groupEnd: 'endGroup',
  timeLog: 'log', verbose: 'debug',
};

/**
 * Errors thrown in the page come back as Errors whose message starts with the page error's
 * name, as Playwright's do: "Error: boom", "TypeError: x is not a function".
 */
function evaluationError(e) {
  if (e instanceof Error) {
    const kind = e.name || 'Error';
    const err = new Error(e.message.startsWith(`${kind}:`) ? e.message : `${kind}: ${e.message}`);
    err.stack = `${err.message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
    err.cause = e;
    return err;
  }
  // A thrown non-Error (a string, an object): puppeteer rethrows the value itself.
  let text;
  try { text = typeof e === 'string' ? e : JSON.stringify(e); } catch { text = String(e); }
  return new Error(`page threw ${text}`);
}

function splitKey(key) {
  // Playwright syntax: "Enter", "Shift+Tab", "Control+a", "ControlOrMeta+A"; "+" alone is the key.
  if (key === '+' || !key.includes('+')) return { modifiers: [], key };
  const parts = key.split('+');
  let last = parts.pop();
  if (last === '') { parts.pop(); last = '+'; }
  const modifiers = parts.map((m) => (m === 'ControlOrMeta' ? (process.platform === 'darwin' ? 'Meta' : 'Control') : m));
  return { modifiers, key: last };
}

// Firefox files its own WebSocket's network failures as script errors (dom/locales
// netError-ish strings of nsWebSocket): failures the page sees as `error`/`close` events, not
// uncaught exceptions, so errors() leaves them out.
const WEBSOCKET_NETWORK_MESSAGES = [
  /^Firefox can.t establish a connection to the server at \S+\.$/,
  /^The connection to \S+ was interrupted while the page was loading\.$/,
];

function wrapPage(raw, connection) {
  const consoleLines = [];
  const pageErrors = [];
  raw.setDefaultTimeout(DEFAULT_TIMEOUT);
  raw.setDefaultNavigationTimeout(DEFAULT_TIMEOUT);
  // Console lines and page errors come straight from the BiDi log entries of this page's frames:
  // Firefox's own text applies format strings ("%s is %d") and names objects ("Object(3)"),
  // where puppeteer's ConsoleMessage.text() would not. Errors read "Error: boom" (uncaught) and
  // "Error: x" / "uncaught exception: <value>" (unhandled rejections).
  const ownFrame = (context) => {
    try { return raw.frames().some((f) => f._id === context); } catch { return false; }
  };
  if (connection && typeof raw.mainFrame()._id === 'string') {
    const onEntry = (entry) => {
      if (!ownFrame(entry.source?.context)) return;
      if (entry.type === 'console') consoleLines.push(`${CONSOLE_TYPE[entry.method] ?? entry.method}: ${entry.text ?? ''}`);
      else if (entry.type === 'javascript' && !WEBSOCKET_NETWORK_MESSAGES.some((re) => re.test(entry.text ?? ''))) pageErrors.push(entry.text ?? '');
    };
    connection.on('log.entryAdded', onEntry);
    raw.once('close', () => connection.off('log.entryAdded', onEntry));
  } else {
    // Fallback should puppeteer's internals change: its events (no format strings).
    raw.on('console', (m) => consoleLines.push(`${CONSOLE_TYPE[m.type()] ?? m.type()}: ${m.text()}`));
    raw.on('pageerror', (e) => pageErrors.push(e instanceof Error ? e.message : String(e)));
  }
  // The DOM helpers wait (options.timeout, 30 s by default) for `selector` (CSS) to match.
  const element = async (selector, options = {}) => {
    const timeout = options.timeout ?? DEFAULT_TIMEOUT;
    let handle;
    try {
      handle = await raw.waitForSelector(selector, { timeout });
    } catch (e) {
      throw new Error(`no element matches ${selector} within ${timeout} ms (${e.message})`, { cause: e });
    }
    if (!handle) throw new Error(`no element matches ${selector}`);
    return handle;
  };
  const inElement = async (selector, options, fn, ...args) => {
    const handle = await element(selector, options);
    try {
      return await handle.evaluate(fn, ...args);
    } catch (e) {
      throw evaluationError(e);
    } finally {
      await handle.dispose().catch(() => {});
    }
  };
  const setChecked = async (selector, want, options) => {
    const state = () => inElement(selector, options, (el) => {
      if (!(el instanceof HTMLInputElement) || !['checkbox', 'radio'].includes(el.type)) {
        throw new Error('not a checkbox or radio input');
      }
      return el.checked;
    });
    if ((await state()) === want) return;
    await raw.click(selector);
    if ((await state()) !== want) throw new Error(`clicking ${selector} did not ${want ? 'check' : 'uncheck'} it`);
  };
  return {
    raw,
    /** Navigates and waits for the load event (options.timeout, 30 s by default). */
    async goto(url, options = {}) {
      await raw.goto(url, { waitUntil: 'load', timeout: options.timeout ?? DEFAULT_TIMEOUT });
    },
    /**
     * Playwright's evaluate: `fn(arg)` in the page (a string is an expression, `arg` unused),
     * awaited. Returns the value as WebDriver BiDi carries it: JSON data plus undefined, NaN,
     * ±Infinity, -0, BigInt, Date, RegExp, Map and Set; cycles, typed arrays, ArrayBuffers, DOM
     * nodes, functions and Errors come back undefined (return plain data, as the tests do).
     */
    async evaluate(fn, arg) {
      try {
        return typeof fn === 'function' ? await raw.evaluate(fn, arg) : await raw.evaluate(String(fn));
      } catch (e) {
        throw evaluationError(e);
      }
    },
    /** Polls `fn(arg)` in the page every 20 ms (options.polling) until truthy; 30 s by default. */
    async waitForFunction(fn, arg, options = {}) {
      const opts = { timeout: options.timeout ?? DEFAULT_TIMEOUT, polling: options.polling ?? 20 };
      try {
        const handle = typeof fn === 'function'
          ? await raw.waitForFunction(fn, opts, arg)
          : await raw.waitForFunction(String(fn), opts);
        await handle.dispose().catch(() => {});
      } catch (e) {
        throw evaluationError(e);
      }
    },
    async screenshot(options = {}) {
      await raw.screenshot({ type: 'png', ...options });
    },
    async console() { return [...consoleLines]; },
    async errors() { return [...pageErrors]; },
    async click(selector, options) {
      await element(selector, options).then((h) => h.dispose());
      await raw.click(selector);
    },
    /** Sets the value and fires `input` (and `change` where Playwright does), as Playwright's fill. */
    async fill(selector, value, options) {
      await inElement(selector, options, (el, value) => {
        const changeTypes = ['color', 'date', 'time', 'datetime-local', 'month', 'range', 'week'];
        el.focus();
        if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) {
          el.value = value;
          el.dispatchEvent(new InputEvent('input', { bubbles: true, composed: true, inputType: 'insertText', data: value }));
          if (el instanceof HTMLInputElement && changeTypes.includes(el.type)) el.dispatchEvent(new Event('change', { bubbles: true }));
        } else if (el.isContentEditable) {
          el.textContent = value;
          el.dispatchEvent(new InputEvent('input', { bubbles: true, composed: true, inputType: 'insertText', data: value }));
        } else {
          throw new Error('Element is not an <input>, <textarea> or [contenteditable] element');
        }
      }, String(value));
    },
    /** Selects options by value (or else label); fires input and change; resolves with the selected values. */
    async selectOption(selector, value, options) {
      const wanted = (Array.isArray(value) ? value : [value]).map((v) => (typeof v === 'object' && v !== null ? (v.value ?? v.label) : String(v)));
      return inElement(selector, options, (el, wanted) => {
        if (!(el instanceof HTMLSelectElement)) throw new Error('Element is not a <select> element');
        const options = [...el.options];
        const picked = wanted.map((w) => options.find((o) => o.value === w) ?? options.find((o) => o.label === w));
        if (picked.some((o) => !o)) throw new Error(`no option matches ${JSON.stringify(wanted)}`);
        for (const o of options) o.selected = picked.includes(o);
        el.dispatchEvent(new Event('input', { bubbles: true, composed: true }));
        el.dispatchEvent(new Event('change', { bubbles: true }));
        return picked.map((o) => o.value);
      }, wanted);
    },
    check(selector, options) { return setChecked(selector, true, options); },
    uncheck(selector, options) { return setChecked(selector, false, options); },
    /** Focuses the element and presses `key` (Playwright names and "Shift+Tab" combinations). */
    async press(selector, key, options) {
      const handle = await element(selector, options);
      await handle.focus();
      await handle.dispose().catch(() => {});
      const { modifiers, key: main } = splitKey(key);
      for (const m of modifiers) await raw.keyboard.down(m);
      try {
        await raw.keyboard.press(main);
      } finally {
        for (const m of modifiers.reverse()) await raw.keyboard.up(m);
      }
    },
    textContent(selector, options) { return inElement(selector, options, (el) => el.textContent); },
    getAttribute(selector, attr, options) { return inElement(selector, options, (el, attr) => el.getAttribute(attr), attr); },
    async close() {
      if (!raw.isClosed()) await raw.close().catch((e) => { if (!raw.isClosed()) throw e; });
    },
  };
}
