// What a server render does with h2ws (Next.js, SvelteKit, Nuxt, Astro import the page's modules
// in Node): import it by its bare name, here from a project that installed the tarball. Then what
// a socket does in Node: fails the WHATWG way without the wasm, works with ready(bytes).
// Prints one JSON line for node.test.mjs. argv[2]: the devserver's plain-HTTP origin.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const origin = process.argv[2];
const fetched = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  fetched.push(String(input?.url ?? input));
  return realFetch(input, init);
};
const consoleErrors = [];
console.error = (...args) => consoleErrors.push(args.join(' '));
const globalsBefore = Object.getOwnPropertyNames(globalThis).sort();

const h2ws = await import('h2ws');
const out = {
  exports: Object.keys(h2ws).sort(),
  fetchedAtImport: fetched.length,
  globalsAdded: Object.getOwnPropertyNames(globalThis).filter((n) => !globalsBefore.includes(n)),
};

const failure = (f) => {
  try { f(); return 'ok'; } catch (e) { return `${e.name}: ${e.message}`; }
};
const events = (target, types) => {
  const seen = [];
  for (const type of types) target.addEventListener(type, (e) => seen.push(`${type}${e.code ? ` ${e.code} ${e.wasClean}` : ''}`));
  return seen;
};
const closeOf = (ws) => new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no close event in 10 s')), 10000);
  ws.addEventListener('close', () => { clearTimeout(timer); resolve(); });
});

// No document in Node: a relative URL has no base.
out.relative = failure(() => new h2ws.H2WebSocket('/ws/echo'));
// Without the wasm (Node's fetch() cannot read the file: URL next to the module).
const early = new h2ws.H2WebSocket(`${origin}/ws/echo`);
out.earlyState = early.readyState;
out.earlySend = failure(() => early.send('x'));
const earlyEvents = events(early, ['open', 'error', 'close']);
await closeOf(early);
out.withoutWasm = { events: earlyEvents, console: consoleErrors.filter((l) => l.startsWith('h2ws:')).length };
out.fetchedBeforeReady = fetched.filter((u) => u.includes('/ws/')).length;

// With the wasm's bytes: an echo round trip against the devserver.
await h2ws.ready(await readFile(fileURLToPath(import.meta.resolve('h2ws/h2ws_wasm_bg.wasm'))));
const ws = new h2ws.H2WebSocket(`${origin}/ws/echo`);
const wsEvents = events(ws, ['open', 'error', 'close']);
const message = new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data), { once: true }));
ws.addEventListener('open', () => ws.send('hello from node'), { once: true });
const echoed = await Promise.race([message, closeOf(ws).then(() => null)]);
ws.close(1000);
await closeOf(ws);
const stream = new h2ws.H2WebSocketStream(`${origin}/ws/echo`);
const { readable, writable } = await stream.opened;
await writable.getWriter().write('stream from node');
const { value } = await readable.getReader().read();
stream.close();
await stream.closed;
out.withWasm = { echoed, events: wsEvents, stream: value };
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0); // the devserver's keep-alive connections need not hold the process
