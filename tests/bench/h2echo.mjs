// An HTTP/2 echo load client independent of h2ws: Node's `http2` module (nghttp2), RFC 8441
// (extended CONNECT, `:protocol websocket`), so the HTTP/2 echo figures of `cargo xtask bench`
// are not only h2ws's own client against its own server.
//
//   node tests/bench/h2echo.mjs --url http://127.0.0.1:P/ws/echo --conns N --connections C
//        --size BYTES --secs S --out results.jsonl [--label rfc8441/node]
//
// The load_test shape of the other echo benchmarks: N sockets on C HTTP/2 connections (h2c,
// prior knowledge; `https://` trusts the devserver certificate given with --ca PEM), each
// sends one masked binary message and waits for its echo, then repeats. Like the RFC 6455
// load generator: frames precomputed, replies parsed by their headers only. Warm-up, then the
// echoes completed in S seconds; appends one `h2ws_bench::Record` line (msgs/s, or null and
// the error) to --out. Loopback only; bounded in time.

import http2 from 'node:http2';
import fs from 'node:fs';

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
    i++;
  }
  return out;
}

const a = args();
const url = new URL(a.url ?? 'http://127.0.0.1:8080/ws/echo');
if (!['127.0.0.1', '[::1]', 'localhost'].includes(url.hostname)) {
  throw new Error(`loopback only, not ${url.hostname}`);
}
const conns = Number(a.conns ?? 10);
const connections = Math.max(1, Number(a.connections ?? 1));
const size = Number(a.size ?? 16384);
const secs = Number(a.secs ?? 1.5);
const label = a.label ?? 'rfc8441/node';
const outFile = a.out;
// Receive windows and frame size like Chromium's (6 MiB stream, 15 MiB connection, 16 KiB
// frames: Chromium sends no SETTINGS_MAX_FRAME_SIZE).
const settings = { initialWindowSize: 6 << 20, enablePush: false };
const connectionWindow = 15 << 20;
const shape = `${conns} x ${size >= 1024 && size % 1024 === 0 ? `${size / 1024} KiB` : `${size} B`}`;

// One masked binary frame (FIN, opcode 2) carrying `payload` with `key`.
function maskedFrame(payload, key) {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const f = Buffer.alloc(head + 4 + len);
  f[0] = 0x82;
  if (len < 126) f[1] = 0x80 | len;
  else if (len < 65536) { f[1] = 0x80 | 126; f.writeUInt16BE(len, 2); }
  else { f[1] = 0x80 | 127; f.writeBigUInt64BE(BigInt(len), 2); }
  key.copy(f, head);
  for (let i = 0; i < len; i++) f[head + 4 + i] = payload[i] ^ key[i & 3];
  return f;
}

function record(value, note) {
  const line = JSON.stringify({
    bench: 'http2', case: shape, imp: label, metric: 'msgs/s', value, note,
  });
  console.log(`result ${line}`);
  if (outFile) fs.appendFileSync(outFile, line + '\n');
}

function connect() {
  return new Promise((resolve, reject) => {
    const opts = { settings, peerMaxConcurrentStreams: 1000 };
    if (url.protocol === 'https:') {
      if (!a.ca) throw new Error('https:// needs --ca PEM');
      opts.ca = fs.readFileSync(a.ca);
    }
    const session = http2.connect(url.origin, opts);
    const timer = setTimeout(() => reject(new Error('no SETTINGS from the server within 10 s')), 10_000);
    session.once('error', reject);
    session.once('remoteSettings', (s) => {
      clearTimeout(timer);
      if (!s.enableConnectProtocol) {
        reject(new Error('the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL'));
        return;
      }
      session.setLocalWindowSize(connectionWindow);
      resolve(session);
    });
  });
}

// Opens one RFC 8441 socket; resolves to its stream once answered 200.
function open(session) {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': url.protocol.slice(0, -1),
      ':path': url.pathname + url.search,
      ':authority': url.host,
      'sec-websocket-version': '13',
    });
    stream.once('error', reject);
    stream.once('response', (h) => {
      if (h[':status'] !== 200) reject(new Error(`status ${h[':status']}`));
      else resolve(stream);
    });
  });
}

const state = { done: 0, stop: false, error: null };

// The load_test loop on one socket: write the frame, read the echo (headers only), repeat.
function run(stream, frame) {
  return new Promise((resolve) => {
    let need = -1; // payload bytes of the current reply frame still to come (-1: in its header)
    const hbuf = Buffer.alloc(10);
    let hlen = 0;
    let b0 = 0;
    let got = 0;
    const fail = (e) => {
      if (!state.error) state.error = String(e);
      state.stop = true;
      resolve();
    };
    stream.on('error', fail);
    stream.on('close', () => (state.stop ? resolve() : fail('stream closed')));
    stream.on('data', (chunk) => {
      let off = 0;
      while (off < chunk.length) {
        if (need < 0) {
          // The header, byte by byte (at most 10 per frame); the payload is only counted.
          hbuf[hlen++] = chunk[off++];
          if (hlen < 2) continue;
          const l7 = hbuf[1] & 0x7f;
          const hl = l7 < 126 ? 2 : l7 === 126 ? 4 : 10;
          if (hlen < hl) continue;
          const len = l7 < 126 ? l7 : l7 === 126 ? hbuf.readUInt16BE(2) : Number(hbuf.readBigUInt64BE(2));
          b0 = hbuf[0];
          hlen = 0;
          const opcode = b0 & 0x0f;
          if (opcode === 0x8) return fail('the server closed the socket');
          if (opcode < 0x8) got += len;
          need = len;
          if (need === 0) finish();
          continue;
        }
        const take = Math.min(need, chunk.length - off);
        off += take;
        need -= take;
        if (need === 0) finish();
      }
    });
    function finish() {
      need = -1;
      if ((b0 & 0x0f) >= 0x8 || (b0 & 0x80) === 0) return; // ping/pong, or more to come
      if (got !== size) return fail(`echo of ${size} bytes came back as ${got}`);
      got = 0;
      state.done++;
      if (state.stop) {
        stream.close();
        resolve();
      } else {
        stream.write(frame);
      }
    }
    stream.write(frame);
  });
}

async function main() {
  const sessions = [];
  for (let i = 0; i < connections; i++) sessions.push(await connect());
  const streams = [];
  for (let i = 0; i < conns; i++) streams.push(await open(sessions[i % sessions.length]));
  const runs = streams.map((s, i) => {
    const payload = Buffer.alloc(size);
    for (let j = 0; j < size; j++) payload[j] = (i + j) & 0xff;
    const key = Buffer.alloc(4);
    key.writeUInt32BE((i ^ 0x5a5a1234) >>> 0);
    return run(s, maskedFrame(payload, key));
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(Math.min(1, Math.max(0.2, secs / 5)) * 1000);
  const c0 = state.done;
  const t0 = process.hrtime.bigint();
  await sleep(secs * 1000);
  const c1 = state.done;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  state.stop = true;
  const finished = await Promise.race([
    Promise.all(runs).then(() => true),
    sleep(30_000).then(() => false),
  ]);
  for (const s of sessions) s.destroy();
  if (state.error) return record(null, state.error);
  if (!finished) return record(null, 'a socket did not finish its last round trip in 30 s');
  if (c1 === c0) return record(null, 'no echo completed during the measurement');
  record((c1 - c0) / elapsed, `${label} (${connections} conn, Node ${process.version} http2)`);
}

main().catch((e) => {
  record(null, String(e?.message ?? e));
  process.exitCode = 1;
});
