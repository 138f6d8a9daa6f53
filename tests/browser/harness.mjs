// Test harness: the real devserver on 127.0.0.1:0 and headless Chromium via playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const www = path.join(here, 'www');
export const pkg = path.join(root, 'wasm/pkg');

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
 * Starts the devserver on an ephemeral port; resolves with { origin, stop(), kill(), output }.
 * `origin` is the https://127.0.0.1:PORT from its `listening` line.
 */
export async function startDevserver(extraArgs = []) {
  const certDir = mkdtempSync(path.join(tmpdir(), 'h2ws-cert-'));
  const args = ['--addr', '127.0.0.1:0', '--no-http', '--www', www, '--pkg', pkg, '--cert-dir', certDir, ...extraArgs];
  const child = spawn(devserverBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' } });
  const output = [];
  const origin = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devserver did not print its listening line in 30 s:\n${output.join('')}`)), 30000);
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      output.push(chunk.toString());
      buffered += chunk.toString();
      const m = buffered.match(/listening (https:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.stderr.on('data', (chunk) => output.push(chunk.toString()));
    child.on('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`devserver exited (${code ?? signal}):\n${output.join('')}`)); });
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const cleanup = () => rmSync(certDir, { recursive: true, force: true });
  return {
    origin,
    output,
    child,
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

/** Headless Chromium (Debian's), fresh profile, self-signed certificate accepted. */
export async function launchBrowser(extraArgs = []) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'h2ws-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--ignore-certificate-errors',
      ...extraArgs,
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Opens the test page and waits until `h2ws` is imported. Console output is kept for asserts. */
export async function openPage(context, origin, pathname = '/index.html') {
  const page = await context.newPage();
  const consoleLines = [];
  const pageErrors = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(origin + pathname);
  await page.waitForFunction(() => window.h2wsReady === true, null, { timeout: 60000 });
  page.consoleLines = consoleLines;
  page.pageErrors = pageErrors;
  return page;
}

/** One server + browser + page for a whole test file. */
export async function setup(extraArgs = []) {
  const server = await startDevserver(extraArgs);
  let browser;
  try {
    browser = await launchBrowser();
    const page = await openPage(browser.context, server.origin);
    return {
      server,
      browser,
      page,
      /** Closes everything; fails if the page had uncaught errors or unhandled rejections. */
      async teardown() {
        await browser.close().catch(() => {});
        await server.stop().catch(() => {});
        if (page.pageErrors.length > 0) {
          throw new Error(`uncaught errors in the page:\n${page.pageErrors.join('\n')}`);
        }
      },
    };
  } catch (e) {
    await browser?.close().catch(() => {});
    await server.stop();
    throw e;
  }
}

export const TRANSPORTS = ['stream', 'post'];
