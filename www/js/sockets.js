// The three ways this page opens a socket. All three have the browser WebSocket API, so the rest of
// the demo is written once against it.

export const TRANSPORTS = {
  stream: {
    label: 'H2WebSocket · stream',
    badge: 'stream',
    needsPkg: true,
    about: 'two fetch() requests on the page’s HTTP/2 connection: a streaming upload and a streaming response',
  },
  post: {
    label: 'H2WebSocket · post',
    badge: 'post',
    needsPkg: true,
    about: 'a streaming response down, ordered PUT batches up (works without request streaming and on HTTP/1.1)',
  },
  native: {
    label: 'WebSocket (browser’s own)',
    badge: 'WebSocket',
    needsPkg: false,
    about: 'the browser’s own WebSocket: RFC 8441 on the HTTP/2 connection, RFC 6455 on HTTP/1.1',
  },
};

/**
 * Why `stream` cannot work on this page ('' when it can), from what was measured at boot:
 * `ctx.streams` (this browser streams fetch() request bodies) and `ctx.proto` (the page's HTTP
 * version). Rich text (backticks are code).
 */
export function streamHint(ctx) {
  if (!ctx.streams) {
    return '`stream` needs fetch() request-body streaming, which this browser does not have (Firefox and Safari lack it): `post` works here, and `auto` picks it.';
  }
  if (!ctx.canStream) {
    return `\`stream\` needs fetch() request streaming, which browsers do only over HTTP/2 (this page came over ${ctx.proto || 'an unknown protocol'}): use \`post\`.`;
  }
  return '';
}

/** ws(s):// URL of a path on this origin. */
export function socketUrl(path) {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.href;
}

/**
 * Opens a WebSocket-like socket. `pkg` is the loaded package module or null.
 * Throws (synchronously, like the WebSocket constructor) when it cannot even start.
 */
export function openSocket(kind, path, pkg, { binaryType = 'arraybuffer' } = {}) {
  const url = socketUrl(path);
  let ws;
  if (kind === 'native') {
    ws = new WebSocket(url);
  } else {
    if (!pkg) throw new Error('the h2ws package is not loaded (see the message at the top)');
    // `resume`: the socket survives a lost connection (the network panel cuts it).
    ws = new pkg.H2WebSocket(url, [], { transport: kind, resume: true });
  }
  ws.binaryType = binaryType;
  return ws;
}

/** Resolves on `open`, rejects with the close event (code, reason) if it closes first. */
export function opened(ws, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      ws.removeEventListener('open', onOpen);
      ws.removeEventListener('close', onClose);
    };
    const onOpen = () => {
      done();
      resolve(ws);
    };
    const onClose = (ev) => {
      done();
      const err = new Error(`closed before opening (code ${ev.code}${ev.reason ? `, “${ev.reason}”` : ''})`);
      err.code = ev.code;
      reject(err);
    };
    const timer = setTimeout(() => {
      done();
      try {
        ws.close();
      } catch {}
      reject(new Error(`no open within ${ms / 1000} s`));
    }, ms);
    ws.addEventListener('open', onOpen);
    ws.addEventListener('close', onClose);
  });
}

/** Human text for a close code. */
export function closeText(code) {
  return (
    {
      1000: 'normal closure',
      1001: 'going away (server shutting down or page leaving)',
      1002: 'protocol error',
      1003: 'unsupported data',
      1005: 'no status code',
      1006: 'connection lost without a Close frame',
      1007: 'invalid UTF-8',
      1008: 'policy violation',
      1009: 'message too big',
      1011: 'server error',
    }[code] ?? 'closed'
  );
}
