// End-to-end test of the demo page (www/): the real h2ws-devserver and headless Chromium.
//
//   cd tests && npm ci && node --test --test-concurrency=1 demo/
//
// Builds the devserver (`cargo build -p h2ws-devserver`, skipped when $H2WS_DEVSERVER names a
// binary) and needs the npm package built into wasm/pkg (`bash wasm/build.sh`). Chat between three
// pages on three transports, the echo lab, the backpressure view and the on-screen errors (HTTP/1.1,
// package missing, server gone). Screenshots go to tests/out/ for a person to look at.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const WWW = path.join(root, 'www');
const PKG = process.env.H2WS_PKG_DIR ?? path.join(root, 'wasm/pkg');
const OUT = path.join(root, 'tests/out');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--ignore-certificate-errors',
];
const SHORT = 10_000; // one UI step
const LONG = 120_000; // a measurement run
const STEP_TEST = 60_000; // a test made of UI steps

// ---- devserver --------------------------------------------------------------------------------

function devserverBinary() {
  if (process.env.H2WS_DEVSERVER) return process.env.H2WS_DEVSERVER;
  const build = spawnSync('cargo', ['build', '-p', 'h2ws-devserver'], { cwd: root, stdio: 'inherit', timeout: 1_800_000 });
  assert.equal(build.status, 0, 'cargo build -p h2ws-devserver failed');
  return path.join(root, 'target/debug/h2ws-devserver');
}

/** Starts the devserver on ephemeral ports; resolves once both `listening` lines are out. */
async function startServer(bin, www = WWW) {
  const certDir = mkdtempSync(path.join(tmpdir(), 'h2ws-demo-cert-'));
  // A short resume grace window (10 s, default 30): the page's sockets resume (network panel),
  // and when the server is gone for good they give up soon (the demo's `server gone` banner).
  const args = ['--addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--www', www, '--pkg', PKG, '--cert-dir', certDir, '--resume-grace', '10'];
  const child = spawn(bin, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  const output = [];
  child.stderr.on('data', (c) => output.push(c.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const urls = await new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`devserver printed no listening lines within 30 s:\n${output.join('')}`)), 30_000);
    child.stdout.on('data', (c) => {
      output.push(c.toString());
      text += c.toString();
      const https = text.match(/listening (https:\/\/127\.0\.0\.1:\d+)/)?.[1];
      const http = text.match(/listening (http:\/\/127\.0\.0\.1:\d+)/)?.[1];
      if (https && http) {
        clearTimeout(timer);
        resolve({ https, http });
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`devserver exited (${code ?? sig}) before listening:\n${output.join('')}`));
    });
  });
  const stop = async (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    rmSync(certDir, { recursive: true, force: true });
  };
  return { ...urls, output, stop: () => stop('SIGTERM'), kill: () => stop('SIGKILL') };
}

// ---- browser ----------------------------------------------------------------------------------

async function launch(extraArgs = [], { ignoreCertificateErrors = true } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'h2ws-demo-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS.filter((a) => ignoreCertificateErrors || a !== '--ignore-certificate-errors'), ...extraArgs],
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  context.setDefaultTimeout(SHORT);
  return {
    context,
    close: async () => {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const pageErrors = new WeakMap();
/** Each page's console lines, for failure messages. */
const pageConsole = new WeakMap();

/** Opens the demo and waits for it to start; `ready` is what <html data-ready> must become. */
async function openDemo(context, origin, ready = 'pkg') {
  const page = await context.newPage();
  const errors = [];
  pageErrors.set(page, errors);
  page.on('pageerror', (e) => errors.push(String(e)));
  const consoleLines = [];
  pageConsole.set(page, consoleLines);
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  await page.goto(origin + '/', { timeout: SHORT });
  await page.waitForSelector('html[data-ready]', { timeout: SHORT });
  const state = await page.getAttribute('html', 'data-ready');
  if (state !== ready) {
    const banners = await page.locator('#issues').innerText().catch(() => '');
    assert.fail(`demo started as '${state}', expected '${ready}'. Banners: ${banners || 'none'}. Page errors: ${errors.join('; ') || 'none'}`);
  }
  return page;
}

const text = (page, sel) => page.locator(sel).first().innerText({ timeout: SHORT });
const num = async (page, sel) => Number(await page.locator(sel).first().getAttribute('data-value', { timeout: SHORT }));

async function connectChat(page, name, transport) {
  await page.fill('#chat-name', name);
  await page.selectOption('#chat-transport', transport);
  await page.click('#chat-connect-btn');
  await page.waitForSelector('#chat-status[data-state="open"]', { timeout: SHORT });
}

async function say(page, message) {
  await page.fill('#chat-input', message);
  await page.press('#chat-input', 'Enter');
}

/** The other-sender message with this text: its sender name and transport badge. */
async function received(page, message) {
  const li = page.locator('#chat-log li.msg.other', { hasText: message });
  await li.first().waitFor({ timeout: SHORT });
  return { who: await li.locator('.who').innerText(), badge: await li.locator('.badge').first().innerText(), transport: await li.getAttribute('data-transport') };
}

// ---- the tests --------------------------------------------------------------------------------

let bin;
let server;
let browser;
let main; // the page the screenshot is taken of

before(async () => {
  assert.ok(existsSync(path.join(PKG, 'package.json')), `${PKG}/package.json missing: build the package first (bash wasm/build.sh)`);
  mkdirSync(OUT, { recursive: true });
  bin = devserverBinary();
  server = await startServer(bin);
  browser = await launch();
}, { timeout: 1_900_000 });

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('the demo loads over HTTP/2 with the package from /pkg/', { timeout: STEP_TEST }, async () => {
  main = await openDemo(browser.context, server.https);
  assert.equal(await text(main, '#fact-page'), 'HTTP/2');
  assert.match(await text(main, '#fact-pkg'), /^h2ws .*HTTP\/2/);
  assert.equal(await text(main, '#fact-streaming'), 'yes (HTTP/2)');
  assert.match(await text(main, '#fact-server'), /^\d+ open sockets?\b/);
  assert.equal(await main.locator('#issues .issue').count(), 0, `unexpected banners: ${await main.locator('#issues').innerText()}`);
  assert.deepEqual(pageErrors.get(main), []);
});

test('chat: stream, native WebSocket and post pages see each other', { timeout: STEP_TEST }, async () => {
  const b = await openDemo(browser.context, server.https);
  const c = await openDemo(browser.context, server.https);
  try {
    await connectChat(main, 'alice', 'stream');
    await connectChat(b, 'bob', 'native');
    await connectChat(c, 'carol', 'post');
    // The server sees the three transports; the browser's own WebSocket rides HTTP/2 (RFC 8441).
    const stats = await main.evaluate(async () => (await fetch('/.h2ws/stats', { cache: 'no-store' })).json());
    for (const t of ['stream', 'post', 'rfc8441']) assert.ok(stats.open[t] >= 1, `open ${t} sockets: ${JSON.stringify(stats.open)}`);
    // The server echoes to the sender too: own messages turn "delivered".
    await say(main, 'hello from alice over stream');
    await main.waitForSelector('#chat-log li.msg.mine[data-delivered]', { timeout: SHORT });
    for (const p of [b, c]) {
      assert.deepEqual(await received(p, 'hello from alice over stream'), { who: 'alice', badge: 'stream', transport: 'stream' });
    }
    await say(b, 'bob here, native WebSocket');
    for (const p of [main, c]) {
      assert.deepEqual(await received(p, 'bob here, native WebSocket'), { who: 'bob', badge: 'WebSocket', transport: 'native' });
    }
    await say(c, 'carol says hi over post');
    for (const p of [main, b]) {
      assert.deepEqual(await received(p, 'carol says hi over post'), { who: 'carol', badge: 'post', transport: 'post' });
    }
    // Each message shows the sender page's HTTP version.
    const proto = await main.locator('#chat-log li.msg.other .badge.proto').first().innerText();
    assert.equal(proto, 'HTTP/2');
    // Presence lines name the transports the others joined with.
    await main.locator('#chat-log li.presence', { hasText: 'carol' }).first().waitFor({ timeout: SHORT });
    assert.deepEqual([...pageErrors.get(b), ...pageErrors.get(c)], []);
  } finally {
    await b.close();
    await c.close();
  }
});

test('network panel: a dropped connection is resumed and the chat carries on', { timeout: STEP_TEST }, async () => {
  const d = await openDemo(browser.context, server.https);
  const e = await openDemo(browser.context, server.https);
  try {
    await connectChat(d, 'gina', 'stream');
    await connectChat(e, 'hank', 'post');
    await say(d, 'before the cut');
    await received(e, 'before the cut');
    // The server drops the page's HTTP/2 connection (shared by both pages of this context).
    await d.click('#net-cut');
    await d.waitForSelector('#net-status[data-state="open"]', { timeout: SHORT });
    const resumed = await text(d, '#net-log li');
    assert.match(resumed, /[1-9]\d* sockets? resumed/, `network log: ${resumed}`);
    // No close, no reconnect: the same sockets carry on both ways.
    for (const p of [d, e]) assert.equal(await p.getAttribute('#chat-status', 'data-state'), 'open');
    await say(d, 'after the cut, over stream');
    assert.deepEqual(await received(e, 'after the cut, over stream'), { who: 'gina', badge: 'stream', transport: 'stream' });
    await say(e, 'after the cut, over post');
    assert.deepEqual(await received(d, 'after the cut, over post'), { who: 'hank', badge: 'post', transport: 'post' });
    await d.screenshot({ path: path.join(OUT, 'demo-network.png'), fullPage: true });
    assert.deepEqual([...pageErrors.get(d), ...pageErrors.get(e)], []);
  } catch (err) {
    // What each page and the server saw around the cut (run with RUST_LOG=h2ws=debug for more).
    const logs = async (p) => p.evaluate(() => ({
      chat: document.getElementById('chat-status').textContent,
      chatLog: [...document.querySelectorAll('#chat-log li')].map((l) => l.textContent).slice(-8),
      netLog: [...document.querySelectorAll('#net-log li')].map((l) => l.textContent),
    })).then((r) => ({ ...r, console: pageConsole.get(p).slice(-12) })).catch((e) => String(e));
    err.message += `\npage d (stream): ${JSON.stringify(await logs(d))}\npage e (post): ${JSON.stringify(await logs(e))}` +
      `\nserver log (tail):\n${server.output.join('').slice(-6000)}`;
    throw err;
  } finally {
    await d.close();
    await e.close();
  }
});

test('echo lab: H2WebSocket stream and post beside the browser’s WebSocket, sane numbers', { timeout: LONG + SHORT }, async () => {
  const size = 1024;
  const count = 300;
  for (const kind of ['stream', 'post', 'native']) await main.check(`#echo-transports input[value="${kind}"]`);
  await main.selectOption('#echo-size', String(size));
  await main.fill('#echo-count', String(count));
  await main.click('#echo-run');
  await main.waitForSelector('#echo-results[data-run="done"]', { timeout: LONG });
  assert.equal(await main.locator('.echo-col').count(), 3);
  for (const kind of ['stream', 'post', 'native']) {
    const col = `.echo-col[data-kind="${kind}"]`;
    const state = await main.getAttribute(col, 'data-state');
    assert.equal(state, 'done', `${kind}: ${await text(main, `${col} .col-note`)}`);
    const [p50, p99, mean, max, mps, mbps] = await Promise.all(
      ['p50', 'p99', 'mean', 'max', 'mps', 'mbps'].map((f) => num(main, `${col} [data-field="${f}"]`)),
    );
    // Loopback: a round trip takes more than nothing and less than a second.
    assert.ok(p50 > 0 && p50 < 1000, `${kind} p50 ${p50} ms`);
    assert.ok(p50 <= p99 && p99 <= max, `${kind} p50 ${p50} ≤ p99 ${p99} ≤ max ${max}`);
    assert.ok(mean > 0 && mean <= max, `${kind} mean ${mean}`);
    assert.ok(mps > 10, `${kind} throughput ${mps} msg/s`);
    assert.ok(Math.abs(mbps - (mps * size) / 1e6) <= 0.05 * mbps, `${kind} MB/s ${mbps} agrees with ${mps} msg/s × ${size} B`);
    assert.match(await text(main, `${col} .col-note`), new RegExp(`^${count} RTT samples`));
    const bars = await main.locator(`${col} svg.hist rect.bar`).count();
    assert.ok(bars >= 1, `${kind} histogram has bars`);
  }
  assert.match(await text(main, '#echo-summary'), /H2WebSocket · stream: RTT p50 .*× WebSocket’s/);
});

test('backpressure: a slow reader keeps the bytes in flight bounded', { timeout: LONG }, async () => {
  const total = 64 * 1024 * 1024;
  await main.selectOption('#bp-size', '65536');
  await main.selectOption('#bp-delay', '5');
  await main.selectOption('#bp-total', String(total));
  await main.click('#bp-run');
  await main.waitForSelector('#bp-status:is([data-state="open"]:text-is("done"), [data-state="bad"])', { timeout: LONG });
  assert.equal(await text(main, '#bp-status'), 'done', await text(main, '#bp-note'));
  const f = async (k) => num(main, `#bp-figures [data-field="${k}"]`);
  assert.equal(await f('read'), total);
  assert.equal(await f('written'), total);
  // The server saw every byte in and out (its totals also count other sockets, never fewer).
  assert.ok((await f('srvIn')) >= total && (await f('srvOut')) >= total);
  // Without backpressure the writer would finish at once with nearly everything in flight.
  const maxInFlight = await f('maxTotal');
  assert.ok(maxInFlight < total / 2, `max written-not-read ${maxInFlight} B of ${total} B`);
  assert.ok((await main.locator('#bp-chart svg.lines path.series').count()) >= 4);
  await main.screenshot({ path: path.join(OUT, 'demo.png'), fullPage: true });
});

test('over HTTP/1.1 the demo says why `stream` cannot work and `post` still does', { timeout: LONG }, async () => {
  const page = await openDemo(browser.context, server.http);
  try {
    assert.equal(await text(page, '#fact-page'), 'HTTP/1.1');
    const issue = page.locator('#issues [data-issue="http1"]');
    await issue.waitFor({ timeout: SHORT });
    assert.match(await issue.innerText(), /request body only over HTTP\/2[\s\S]*post[\s\S]*What to do/);
    assert.match(await text(page, '#fact-streaming'), /^no /);
    // The post fallback and the browser's own WebSocket (RFC 6455 here) both echo.
    await page.uncheck('#echo-transports input[value="stream"]');
    await page.check('#echo-transports input[value="post"]');
    await page.check('#echo-transports input[value="native"]');
    await page.selectOption('#echo-size', '128');
    await page.fill('#echo-count', '50');
    await page.click('#echo-run');
    await page.waitForSelector('#echo-results[data-run="done"]', { timeout: LONG });
    for (const kind of ['post', 'native']) {
      assert.equal(await page.getAttribute(`.echo-col[data-kind="${kind}"]`, 'data-state'), 'done', await text(page, `.echo-col[data-kind="${kind}"] .col-note`));
    }
    await page.screenshot({ path: path.join(OUT, 'demo-http1.png'), fullPage: true });
  } finally {
    await page.close();
  }
});

test('a package that fails to load is explained; the browser’s WebSocket still works', { timeout: STEP_TEST }, async () => {
  const page = await browser.context.newPage();
  try {
    await page.route('**/pkg/**', (route) => route.abort('failed'));
    await page.goto(server.https + '/', { timeout: SHORT });
    await page.waitForSelector('html[data-ready="no-pkg"]', { timeout: SHORT });
    const issue = page.locator('#issues [data-issue="pkg-missing"]');
    assert.match(await issue.innerText(), /did not load from \/pkg\/[\s\S]*wasm\/build\.sh/);
    assert.equal(await text(page, '#fact-pkg'), 'not loaded');
    assert.equal(await page.locator('#chat-transport option[value="stream"]').isDisabled(), true);
    await connectChat(page, 'dave', 'native');
    await say(page, 'native only');
    await page.waitForSelector('#chat-log li.msg.mine[data-delivered]', { timeout: SHORT });
  } finally {
    await page.close();
  }
});

test('an untrusted certificate is detected after clicking through the warning', { timeout: LONG }, async () => {
  // A second browser that does NOT ignore certificate errors, as a newcomer's would.
  const strict = await launch([], { ignoreCertificateErrors: false });
  try {
    const page = strict.context.pages()[0] ?? (await strict.context.newPage());
    await assert.rejects(page.goto(server.https + '/', { timeout: SHORT }), /ERR_CERT_AUTHORITY_INVALID/);
    await page.waitForSelector('#details-button', { timeout: SHORT }); // Chromium's certificate warning
    await page.keyboard.type('thisisunsafe'); // its bypass: proceeds to the page
    await page.waitForSelector('html[data-ready="pkg"]', { timeout: SHORT });
    const issue = page.locator('#issues [data-issue="cert-untrusted"]');
    await issue.waitFor({ timeout: SHORT });
    assert.match(await issue.innerText(), /does not trust this server’s certificate[\s\S]*ignore-certificate-errors-spki-list/);
    await page.screenshot({ path: path.join(OUT, 'demo-cert.png') });
  } finally {
    await strict.close();
  }
});

test('examples/page: the minimal page echoes through H2WebSocket', { timeout: STEP_TEST }, async () => {
  const example = await startServer(bin, path.join(root, 'examples/page'));
  const page = await browser.context.newPage();
  try {
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
  const consoleLines = [];
  pageConsole.set(page, consoleLines);
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.goto(example.https + '/', { timeout: SHORT });
    await page.waitForSelector('#send:not([disabled])', { timeout: SHORT });
    await page.fill('#text', 'ping from the example');
    await page.click('#send');
    await page.waitForFunction(() => document.getElementById('log').textContent.includes('echo: ping from the example'), null, { timeout: SHORT });
    assert.equal((await page.locator('#log').innerText()).trim(), 'open\necho: ping from the example');
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    await example.stop();
  }
});

test('server gone: sockets close 1006 and the page says to restart it', { timeout: STEP_TEST }, async () => {
  const a = await openDemo(browser.context, server.https);
  const b = await openDemo(browser.context, server.https);
  try {
    await connectChat(a, 'erin', 'stream');
    await connectChat(b, 'frank', 'native');
    await server.kill();
    for (const p of [a, b]) {
      const issue = p.locator('#issues [data-issue="server-gone"]');
      // The h2ws socket tries to resume for the server's grace window (10 s here) first.
      await issue.waitFor({ timeout: 2 * SHORT + 5_000 });
      assert.match(await issue.innerText(), /The server is gone \(close 1006\)[\s\S]*cargo xtask dev/);
      assert.equal(await text(p, '#chat-status'), 'closed 1006');
    }
    await a.screenshot({ path: path.join(OUT, 'demo-server-gone.png') });
  } finally {
    await a.close();
    await b.close();
  }
});
