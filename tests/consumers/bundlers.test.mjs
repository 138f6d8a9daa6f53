// The packed h2ws in throwaway apps built by each bundler with its default config (Vite 5, the
// current Vite, webpack 5, esbuild, Rollup), each served by the devserver and echoing on
// /ws/echo in Chromium, Firefox and WebKit; and a strict TypeScript consumer under
// moduleResolution bundler and node16. $H2WS_CONSUMER_ENGINES (comma-separated) narrows the
// engines while working on this file; the test command runs all three.
import { spawn } from 'node:child_process';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ENGINES, launchEngine, openPage, startDevserver } from '../browser/harness.mjs';
import { here, project, run, tool } from './shared.mjs';

const engines = process.env.H2WS_CONSUMER_ENGINES?.split(',') ?? ENGINES;

function page(dir, title, script) {
  fs.writeFileSync(path.join(dir, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<title>${title}</title>\n${script}\n`);
}

/** Each consumer: builds its app in a fresh project, returns the directory to serve. */
const BUILDS = {
  vite5(dir) {
    page(dir, 'vite5', '<script type="module" src="/src/main.js"></script>');
    tool('vite5/bin/vite.js', ['build'], dir);
    return path.join(dir, 'dist');
  },
  vite(dir) {
    page(dir, 'vite', '<script type="module" src="/src/main.js"></script>');
    tool('vite/bin/vite.js', ['build'], dir);
    return path.join(dir, 'dist');
  },
  webpack(dir) {
    // webpack's default entry is src/index.js, its output dist/main.js.
    fs.writeFileSync(path.join(dir, 'src/index.js'), "import './main.js';\n");
    tool('webpack-cli/bin/cli.js', [], dir);
    page(path.join(dir, 'dist'), 'webpack', '<script src="main.js"></script>');
    return path.join(dir, 'dist');
  },
  esbuild(dir) {
    // esbuild has no config file: its documented bundling command, plus the file loader for the
    // wasm's URL (see src/esbuild.js).
    run(path.join(here, 'node_modules/.bin/esbuild'), ['src/esbuild.js', '--bundle', '--loader:.wasm=file', '--outdir=dist'], dir);
    page(path.join(dir, 'dist'), 'esbuild', '<script src="esbuild.js"></script>');
    return path.join(dir, 'dist');
  },
  rollup(dir) {
    tool('rollup/dist/bin/rollup', ['-c'], dir);
    // Rollup leaves `new URL('./h2ws_wasm_bg.wasm', import.meta.url)` as is: the file goes next
    // to the bundle (the README's Rollup step).
    fs.copyFileSync(path.join(dir, 'node_modules/h2ws/h2ws_wasm_bg.wasm'), path.join(dir, 'dist/h2ws_wasm_bg.wasm'));
    page(path.join(dir, 'dist'), 'rollup', '<script type="module" src="main.js"></script>');
    return path.join(dir, 'dist');
  },
};

describe('bundlers (default configs) and TypeScript', () => {
  const apps = []; // { name, server }
  before(async () => {
    for (const [name, build] of Object.entries(BUILDS)) {
      const extra = name === 'rollup' ? [['rollup.config.mjs']] : [];
      const dir = project(name, [['src'], ...extra]);
      const started = Date.now();
      const served = build(dir);
      console.log(`# ${name}: built in ${Date.now() - started} ms`);
      apps.push({ name, server: await startDevserver([], { root: served }) });
    }
  });
  after(async () => {
    for (const { server } of apps) await server.stop().catch(() => {});
  });

  it('TypeScript (strict) type-checks a consumer under moduleResolution bundler and node16', () => {
    const dir = project('typescript', [['ts/main.ts', 'main.ts'], ['ts/tsconfig.bundler.json', 'tsconfig.bundler.json'], ['ts/tsconfig.node16.json', 'tsconfig.node16.json']]);
    for (const config of ['tsconfig.bundler.json', 'tsconfig.node16.json']) {
      tool('typescript/bin/tsc', ['-p', config], dir); // throws with tsc's diagnostics
    }
  });

  for (const engine of engines) {
    describe(engine, () => {
      let browser;
      before(async () => { browser = await launchEngine(engine); });
      after(async () => browser?.close());
      for (const name of Object.keys(BUILDS)) {
        it(`${name}: the built app echoes (H2WebSocket and H2WebSocketStream)`, async () => {
          const { server } = apps.find((a) => a.name === name);
          const tab = await openPage(browser, server.origin, '/index.html');
          try {
            const result = await tab.evaluate(() => window.result);
            assert.deepEqual(result, { connecting: 0, text: `hello from ${name}`, code: 1000, stream: [1, 2, 3] });
            assert.deepEqual(await tab.errors(), []);
          } finally {
            await tab.close?.().catch(() => {});
          }
        });
      }
    });
  }
});

/** Starts a Vite dev server in `dir`; resolves with { url, stop() } once it printed its URL. */
async function viteDev(script, dir) {
  const child = spawn(process.execPath, [path.join(here, 'node_modules', script), '--host', '127.0.0.1', '--port', '0'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vite dev printed no URL in 30 s:\n${output}`)), 30000);
    const seen = (chunk) => {
      output += chunk;
      // eslint-disable-next-line no-control-regex
      const m = output.replace(/\x1b\[[0-9;]*m/g, '').match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`vite dev exited (${code}):\n${output}`)); });
  });
  return { url, stop: () => { child.removeAllListeners('exit'); child.kill(); } };
}

// Vite's dev server pre-bundles dependencies into node_modules/.vite/deps, where the wasm next to
// h2ws's module is not: Vite 5 then answers its URL with index.html. The README's Vite 5 line
// (optimizeDeps.exclude) is what fixes it; the current Vite needs nothing. Only whether the wasm
// loads is checked here (the dev server has no /ws/echo), in Chromium.
describe('Vite dev servers load the wasm (Chromium)', () => {
  let browser;
  before(async () => { browser = await launchEngine('chromium'); });
  after(async () => browser?.close());
  const cases = [
    ['vite5/bin/vite.js', false, /^CompileError/],
    ['vite5/bin/vite.js', true, /^loaded$/],
    ['vite/bin/vite.js', false, /^loaded$/],
  ];
  for (const [script, exclude, expected] of cases) {
    it(`${script.split('/')[0]} dev ${exclude ? "with optimizeDeps.exclude: ['h2ws']" : 'with no config'}: ${expected.source}`, async () => {
      const dir = project(`dev-${script.split('/')[0]}${exclude ? '-exclude' : ''}`, [['src']]);
      page(dir, 'dev', "<script type=\"module\">import { ready } from 'h2ws';\nready().then(() => 'loaded', (e) => String(e)).then((r) => { window.result = r; window.h2wsReady = true; });</script>");
      if (exclude) fs.writeFileSync(path.join(dir, 'vite.config.js'), "export default { optimizeDeps: { exclude: ['h2ws'] } };\n");
      const server = await viteDev(script, dir);
      try {
        const tab = await openPage(browser, server.url.slice(0, -1), '/index.html');
        assert.match(await tab.evaluate(() => window.result), expected);
        await tab.close?.().catch(() => {});
      } finally {
        server.stop();
      }
    });
  }
});
