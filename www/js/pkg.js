// Loads the npm package `h2ws` from /pkg/ (the devserver's --pkg directory).
// The entry file is read from the package's own package.json, so the demo follows whatever the
// build names it; a failure is returned, not thrown, so the rest of the page (the browser's own
// WebSocket) keeps working.

const PKG_BASE = '/pkg/';
const TIMEOUT_MS = 10_000;

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The ESM entry named by a package.json (`exports['.']`, `module`, `main`). */
export function entryOf(manifest) {
  const dot = manifest.exports && (manifest.exports['.'] ?? manifest.exports);
  const fromExports =
    typeof dot === 'string' ? dot : dot && (dot.import?.default ?? dot.import ?? dot.browser ?? dot.default);
  const entry = (typeof fromExports === 'string' && fromExports) || manifest.module || manifest.main;
  if (!entry) throw new Error('package.json names no entry (exports, module or main)');
  return entry.replace(/^\.\//, '');
}

/**
 * @returns {Promise<{ok: true, mod, entry, version, name} | {ok: false, stage, error, entry?}>}
 */
export async function loadPackage() {
  let manifest;
  try {
    const res = await withTimeout(fetch(PKG_BASE + 'package.json', { cache: 'no-store' }), TIMEOUT_MS, 'GET /pkg/package.json');
    if (!res.ok) return { ok: false, stage: 'manifest', error: new Error(`GET /pkg/package.json → HTTP ${res.status}`) };
    manifest = await res.json();
  } catch (error) {
    return { ok: false, stage: 'manifest', error };
  }
  let entry;
  try {
    entry = entryOf(manifest);
    const mod = await withTimeout(import(PKG_BASE + entry), TIMEOUT_MS, `import ${PKG_BASE + entry}`);
    for (const name of ['H2WebSocket', 'H2WebSocketStream']) {
      if (typeof mod[name] !== 'function') throw new Error(`${PKG_BASE + entry} exports no ${name}`);
    }
    return { ok: true, mod, entry, version: manifest.version, name: manifest.name };
  } catch (error) {
    return { ok: false, stage: 'import', error, entry };
  }
}
