// Chromium (Debian's /usr/bin/chromium) through playwright-core over CDP: the engine adapter
// interface of tests/browser/harness.mjs (launch → Browser → Page), Playwright's page as `raw`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const name = 'chromium';

/** Debian's Chromium ($CHROMIUM overrides) and the flags every run here uses (headless, closed network, the devserver's self-signed certificate). */
export const executable = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--ignore-certificate-errors',
];

/** Headless Chromium, fresh profile, self-signed certificates accepted. `options.args`: extra flags; `options.quic`: QUIC allowed. */
export async function launch(options = {}) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'h2ws-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: executable,
    headless: true,
    ignoreHTTPSErrors: true,
    args: [
      // QUIC stays off (every origin on HTTP/2) unless a test asks for HTTP/3 (harness HTTP3).
      ...(options.quic ? FLAGS.filter((f) => f !== '--disable-quic') : FLAGS),
      ...(options.http1 ? ['--disable-http2'] : []),
      ...(options.args ?? []),
    ],
  });
  return {
    name,
    context,
    async newPage() {
      const existing = context.pages().find((p) => p.url() === 'about:blank' && !p.claimed);
      const raw = existing ?? (await context.newPage());
      raw.claimed = true;
      return wrap(raw);
    },
    async close() {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

function wrap(raw) {
  const consoleLines = [];
  const pageErrors = [];
  raw.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  raw.on('pageerror', (e) => pageErrors.push(String(e)));
  return {
    raw,
    async goto(url) { await raw.goto(url); },
    evaluate: (fn, arg) => raw.evaluate(fn, arg),
    async waitForFunction(fn, arg, options) { await raw.waitForFunction(fn, arg, options); },
    async screenshot(options) { await raw.screenshot(options); },
    async console() { return [...consoleLines]; },
    async errors() { return [...pageErrors]; },
    click: (sel) => raw.click(sel),
    fill: (sel, value) => raw.fill(sel, value),
    selectOption: (sel, value) => raw.selectOption(sel, value),
    check: (sel) => raw.check(sel),
    uncheck: (sel) => raw.uncheck(sel),
    press: (sel, key) => raw.press(sel, key),
    textContent: (sel) => raw.textContent(sel),
    getAttribute: (sel, attr) => raw.getAttribute(sel, attr),
    close: () => raw.close(),
  };
}
