// Bun and Deno: import h2ws by name and echo with both classes without calling ready() (their
// fetch() reads the file: URL of the wasm next to the module). Prints one JSON line.
// argv[2]: the devserver's plain-HTTP origin.
const origin = process.argv[2];
const h2ws = await import('h2ws');
const events = [];
const timer = setTimeout(() => { console.log(JSON.stringify({ events, timeout: true })); process.exit(1); }, 10000);
const ws = new h2ws.H2WebSocket(`${origin}/ws/echo`);
for (const type of ['open', 'error', 'close']) ws.addEventListener(type, (e) => events.push(`${type}${e.code ? ` ${e.code}` : ''}`));
ws.addEventListener('open', () => ws.send('hello'));
const echoed = await new Promise((resolve) => ws.addEventListener('message', (e) => resolve(e.data)));
await new Promise((resolve) => { ws.addEventListener('close', resolve); ws.close(1000); });
const stream = new h2ws.H2WebSocketStream(`${origin}/ws/echo`);
const { readable, writable } = await stream.opened;
await writable.getWriter().write('stream');
const { value } = await readable.getReader().read();
stream.close();
await stream.closed;
clearTimeout(timer);
console.log(JSON.stringify({ events, echoed, stream: value }));
process.exit(0);
