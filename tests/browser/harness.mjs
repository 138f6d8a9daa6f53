// Test harness: the real devserver on 127.0.0.1:0 and a real browser engine, chosen by
// H2WS_ENGINE: `chromium` (default; playwright-core), `firefox` (puppeteer-core over WebDriver
// BiDi) or `webkit` (WebKitWebDriver + MiniBrowser under Xvfb). Each adapter in engines/ has the
// same small interface: launch() → { newPage(), close() }, a page with goto, evaluate(fn, arg),
// waitForFunction(fn, arg, { timeout }), screenshot, console(), errors() and DOM helpers.
import { spawn } from 'node:child_process';
import { before, after } from 'node:test';
import { mkdtempSync, rmSync, existsSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The engine under test. */
export const ENGINE = process.env.H2WS_ENGINE ?? 'chromium';
const ENGINES = ['chromium', 'firefox', 'webkit'];
if (!ENGINES.includes(ENGINE)) throw new Error(`H2WS_ENGINE=${ENGINE}: use one of ${ENGINES.join(', ')}`);
const engine = await import(`./engines/${ENGINE}.mjs`);

/**
 * Whether this engine streams fetch() request bodies (the `stream` transport). Measured facts
 * (README "Browsers"): Chromium does; Firefox sends the text `[object ReadableStream]` and WebKit
 * throws NotSupportedError, and the library's feature detection says no in both (a test checks).
 */
export const STREAMS_REQUESTS = ENGINE === 'chromium';
/** Why a `stream`-only test is skipped in this engine (false where it runs). */
export const NEEDS_STREAM = !STREAMS_REQUESTS && `${ENGINE} does not stream fetch() request bodies`;

/**
 * H2WS_HTTP3=1 (Chromium, Firefox): pages and sockets go over HTTP/3. The browser is started per
 * devserver. Chromium: QUIC forced to its origin (`--origin-to-force-quic-on`, also for
 * `localhost`, mapped to 127.0.0.1 since the server listens there only and forced QUIC tries
 * ::1 first), the certificate pinned by SPKI (`--ignore-certificate-errors` does not cover
 * QUIC); `openPage` fails unless the page came over `h3`. Firefox: the pref
 * `network.http.http3.alt-svc-mapping-for-testing` maps the origin to h3 on its port (the
 * navigation itself still goes over h2, the page's requests over h3); `openPage` fails unless
 * a fetch from the page goes over `h3`.
 */
export const HTTP3 = process.env.H2WS_HTTP3 === '1';
if (HTTP3 && !['chromium', 'firefox'].includes(ENGINE)) throw new Error(`H2WS_HTTP3=1 needs H2WS_ENGINE=chromium or firefox (not ${ENGINE})`);

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const www = path.join(here, 'www');
/** The npm package the devserver serves at /pkg/: $H2WS_PKG (the benchmark's build) or wasm/pkg. */
export const pkg = process.env.H2WS_PKG ?? path.join(root, 'wasm/pkg');

/** The devserver binary: $H2WS_DEVSERVER or the workspace debug/release build. */
export function devserverBinary() {
  const candidates = [
    process.env.H2WS_DEVSERVER,
    path.join(root, 'target/debug/h2ws-devserver'),
    path.join(root, 'target/release/h2ws-devserver'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`h2ws-devserver not built (tried ${candidates.join(', ')}); run cargo build -p h2ws-devserver`);
  }
  if (!existsSync(path.join(pkg, 'index.js'))) {
    throw new Error(`${pkg} is missing: run wasm/build.sh first`);
  }
  return found;
}

/**
 * Starts the devserver on an ephemeral port; resolves with { origin, httpOrigin, stop(), kill(),
 * output }. `origin` is the https://127.0.0.1:PORT from its `listening` line (HTTP/2 with TLS);
 * with `{ http: true }` it also listens for plain HTTP/1.1 and `httpOrigin` is that
 * http://127.0.0.1:PORT (a secure context too: loopback), the way every engine can be given
 * a page over HTTP/1.1. `root` is the static site (default: the test pages). `h3`: serve HTTP/3
 * too (default: only when HTTP3).
 */
export async function startDevserver(extraArgs = [], { http = false, root: siteRoot = www, h3 = HTTP3 } = {}) {
  const certDir = mkdtempSync(path.join(tmpdir(), 'h2ws-cert-'));
  const args = [
    '--addr', '127.0.0.1:0', ...(http ? ['--http-addr', '127.0.0.1:0'] : ['--no-http']),
    '--www', siteRoot, '--pkg', pkg, '--cert-dir', certDir,
    // HTTP/3 (and its Alt-Svc header) only when the run is about it: the HTTP/2 suites stay as
    // they were in every engine, whatever an engine would do with Alt-Svc.
    ...(h3 ? [] : ['--no-h3']),
    ...extraArgs,
  ];
  const child = spawn(devserverBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  const output = [];
  // H2WS_SERVER_LOG=path: the devserver's log lines also go to that file (with RUST_LOG).
  if (process.env.H2WS_SERVER_LOG) child.stderr.pipe(createWriteStream(process.env.H2WS_SERVER_LOG, { flags: 'a' }));
  const origins = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devserver did not print its listening lines in 30 s:\n${output.join('')}`)), 30000);
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      output.push(chunk.toString());
      buffered += chunk.toString();
      const tls = buffered.match(/listening (https:\/\/127\.0\.0\.1:\d+)/);
      const plain = buffered.match(/listening (http:\/\/127\.0\.0\.1:\d+)/);
      // The SPKI line comes last (after `h3 udp://…` when HTTP/3 is on).
      const spki = buffered.match(/spki-sha256 (\S+)/);
      const h3 = buffered.match(/h3 udp:\/\/(\S+)/);
      if (tls && spki && (!http || plain)) {
        clearTimeout(timer);
        resolve({ origin: tls[1], httpOrigin: plain?.[1], spki: spki[1], h3: h3?.[1] });
      }
    });
    child.stderr.on('data', (chunk) => output.push(chunk.toString()));
    child.on('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`devserver exited (${code ?? signal}):\n${output.join('')}`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const cleanup = () => rmSync(certDir, { recursive: true, force: true });
  return {
    ...origins,
    output,
    child,
    /** The generated certificate + key (one PEM file), e.g. for a proxy in front (tests/proxy). */
    certPem: path.join(certDir, 'localhost.pem'),
    /** SIGTERM: graceful shutdown (sockets get Close 1001). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
      cleanup();
    },
    /** SIGKILL: the server vanishes mid-stream. */
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      cleanup();
    },
  };
}

/**
 * The engine under test (H2WS_ENGINE), fresh profile, the devserver's certificate accepted.
 * With HTTP3, `options.server` (a startDevserver result) is the origin QUIC is forced to.
 */
export async function launchBrowser(options = {}) {
  if (HTTP3) {
    const { server, ...rest } = options;
    if (!server?.h3) throw new Error('H2WS_HTTP3=1: launchBrowser needs { server } with HTTP/3 on');
    const port = new URL(server.origin).port;
    if (ENGINE === 'firefox') {
      return engine.launch({
        ...rest,
        prefs: {
          ...(rest.prefs ?? {}),
          'network.http.http3.enable': true,
          'network.http.http3.alt-svc-mapping-for-testing': `127.0.0.1;h3=:${port},localhost;h3=:${port}`,
          // Else Firefox turns HTTP/3 off when a certificate is trusted by an override.
          'network.http.http3.disable_when_third_party_roots_found': false,
        },
      });
    }
    return engine.launch({ ...rest, quic: true, args: [...(rest.args ?? []), ...chromiumQuicArgs(server)] });
  }
  return engine.launch(options);
}

/**
 * Chromium's flags for HTTP/3 to a devserver with HTTP/3 on (a startDevserver result): QUIC
 * forced to its origin, its certificate pinned by SPKI, `localhost` resolved to 127.0.0.1 (forced
 * QUIC to `localhost` tries `::1` first and fails). QUIC itself must be allowed too
 * (`quic: true`, or FLAGS without `--disable-quic`).
 */
export function chromiumQuicArgs(server) {
  const port = new URL(server.origin).port;
  return [
    `--origin-to-force-quic-on=127.0.0.1:${port},localhost:${port}`,
    `--ignore-certificate-errors-spki-list=${server.spki}`,
    '--host-resolver-rules=MAP localhost 127.0.0.1',
  ];
}

/** Any engine by name (the benchmark runs all three in one process). */
export async function launchEngine(name, options = {}) {
  if (!ENGINES.includes(name)) throw new Error(`no engine ${name}: use one of ${ENGINES.join(', ')}`);
  const adapter = await import(`./engines/${name}.mjs`);
  return adapter.launch(options);
}

export { ENGINES };

/** Opens the test page and waits until `h2ws` is imported. */
export async function openPage(browser, origin, pathname = '/index.html') {
  const page = await browser.newPage();
  await page.goto(origin + pathname);
  await page.waitForFunction(() => window.h2wsReady === true, undefined, { timeout: 60000 });
  if (HTTP3) {
    const protocol = await page.evaluate(async (engine) => {
      if (engine === 'chromium') return performance.getEntriesByType('navigation')[0]?.nextHopProtocol;
      // Firefox sets the mapped HTTP/3 connection up in the background: wait for it (≤ 10 s).
      let protocol;
      for (let i = 0; i < 40 && protocol !== 'h3'; i++) {
        const url = new URL(`/.h2ws/stats?h3check=${i}`, location.href).href;
        await (await fetch(url, { cache: 'no-store' })).text();
        protocol = performance.getEntriesByName(url)[0]?.nextHopProtocol;
        if (protocol !== 'h3') await new Promise((r) => setTimeout(r, 250));
      }
      return protocol;
    }, ENGINE);
    if (protocol !== 'h3') throw new Error(`H2WS_HTTP3=1 but the page's requests go over ${protocol}`);
  }
  return page;
}

/** One server + browser + page for a whole test file. */
export async function setup(extraArgs = []) {
  const server = await startDevserver(extraArgs);
  let browser;
  try {
    browser = await launchBrowser({ server });
    const page = await openPage(browser, server.origin);
    return {
      server,
      browser,
      page,
      /** Closes everything; fails if the page had uncaught errors or unhandled rejections. */
      async teardown() {
        const errors = await page.errors().catch((e) => [`reading the page's errors failed: ${e}`]);
        await browser.close().catch(() => {});
        await server.stop().catch(() => {});
        if (errors.length > 0) {
          throw new Error(`uncaught errors in the page:\n${errors.join('\n')}`);
        }
      },
    };
  } catch (e) {
    await browser?.close().catch(() => {});
    await server.stop();
    throw e;
  }
}

/**
 * [`setup`] around the tests of the calling `describe`: before them, `use(env)` receives the
 * environment (`env.page` is the page); after them it is torn down (failing on page errors).
 * One line instead of the same before/after block in every test file.
 */
export function setupForSuite(use, extraArgs = []) {
  let env;
  before(async () => {
    env = await setup(extraArgs);
    use(env);
  });
  after(async () => env?.teardown());
}

/**
 * The transport options each echo/close test runs with: both fetch transports where the engine
 * streams request bodies; elsewhere `auto` (which must pick `post` by itself) and `post`.
 */
export const TRANSPORTS = STREAMS_REQUESTS ? ['stream', 'post'] : ['auto', 'post'];
