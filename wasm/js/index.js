// h2ws: WebSockets over fetch() streams on HTTP/2.
//
// The thin JS layer: an EventTarget class with the WHATWG WebSocket surface and the
// WebSocketStream shape. Protocol, state and transports live in the wasm core (`Core`).
//
// Importing this module does no work (no top-level await, no fetch, no globals touched), so it
// builds under every bundler target and imports on a server. The wasm loads on first use (or
// on `ready()`); until then a socket is CONNECTING, as while waiting for the network. The API
// rules that throw synchronously (URL, subprotocols, send() while CONNECTING, close()
// arguments) therefore live here and only here: they must answer before the wasm is there.
import init, { Core } from './h2ws_wasm.js';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const TRANSPORTS = ['auto', 'stream', 'post'];
// What the core's `emit(kind, data)` reports (wasm `session::Emit`): numbers, because a string
// from the wasm costs a UTF-8 decode per message.
const EMIT_OPEN = 0;
const EMIT_MESSAGE = 1;
const EMIT_ERROR = 2;
const EMIT_CLOSE = 3;

/** The wasm load: null before the first use (and after a failed load, so a later use retries). */
let loading = null;
let loaded = false;
/** `H2WebSocket.maxSocketsPerOrigin` set before the wasm loaded: applied once it is there. */
let maxPerOrigin = null;

/**
 * Loads the wasm core, once; resolves when sockets can start. Sockets call it themselves, so
 * calling it is optional: call it early to preload, or pass where the wasm is when the bundler
 * does not emit `h2ws_wasm_bg.wasm` for `new URL(..., import.meta.url)` (esbuild, Rollup) or
 * outside a browser: a URL (string or `URL`), `Request`, `Response`, `BufferSource`,
 * `WebAssembly.Module`, or a promise of one. The first call decides; later ones return the same
 * promise. It rejects when the wasm cannot load; sockets waiting for it then fail (`error`,
 * `close` 1006) and the console says why.
 */
export function ready(wasm = undefined) {
  if (loading === null) {
    const attempt = (async () => {
      const source = await (wasm ?? new URL('./h2ws_wasm_bg.wasm', import.meta.url));
      await init({ module_or_path: source });
      loaded = true;
      if (maxPerOrigin !== null) Core.set_max_sockets_per_origin(maxPerOrigin);
    })();
    loading = attempt;
    attempt.catch((error) => {
      if (loading === attempt) loading = null;
      console.error(
        `h2ws: its wasm did not load (${error}), so no socket can open. ` +
          "Serve h2ws_wasm_bg.wasm and pass its URL, bytes or module to ready() before the first " +
          'socket if your bundler does not emit it; outside a browser pass its bytes (see the ' +
          'README of the h2ws package).',
      );
    });
  }
  return loading;
}

/**
 * Creates the wasm core with `create()` now when the wasm is there, else once it loaded, unless
 * `wanted()` says the socket was closed meanwhile; `failed()` when the wasm cannot load.
 */
function withCore(create, wanted, failed) {
  if (loaded) {
    create();
    return;
  }
  ready().then(
    () => {
      if (!wanted()) return;
      try {
        create();
      } catch (error) {
        // Thrown synchronously, this would have come from the constructor; now the socket fails.
        console.error(`h2ws: the socket could not start (${error}).`);
        failed();
      }
    },
    () => { if (wanted()) failed(); },
  );
}

let requestStreaming;
/** Whether fetch() can stream a request body (the `stream` transport; Chromium >= 105). */
function requestStreamingSupported() {
  if (requestStreaming === undefined) {
    try {
      let duplexAccessed = false;
      const hasContentType = new Request('data:,', {
        body: new ReadableStream(),
        method: 'POST',
        get duplex() {
          duplexAccessed = true;
          return 'half';
        },
      }).headers.has('Content-Type');
      requestStreaming = duplexAccessed && !hasContentType;
    } catch {
      requestStreaming = false;
    }
  }
  return requestStreaming;
}

function baseURL() {
  return globalThis.document?.baseURI ?? globalThis.location?.href;
}

function syntaxError(message) {
  return new DOMException(message, 'SyntaxError');
}

/**
 * The WebSocket constructor's URL rules: parse against the document (or worker) base URL;
 * http→ws, https→wss, ws/wss kept, another scheme or any fragment (even empty) → SyntaxError.
 * Returns the `url` attribute, the URL to fetch and the ws(s) origin (`MessageEvent.origin`).
 */
function socketURL(input, who) {
  const text = String(input);
  let parsed;
  try {
    parsed = new URL(text, baseURL());
  } catch {
    throw syntaxError(`Failed to construct '${who}': The URL '${text}' is invalid.`);
  }
  const secure = { 'ws:': false, 'http:': false, 'wss:': true, 'https:': true }[parsed.protocol];
  if (secure === undefined) {
    throw syntaxError(
      `Failed to construct '${who}': The URL's scheme must be either 'http', 'https', 'ws', or 'wss'. '${parsed.protocol.slice(0, -1)}' is not allowed.`,
    );
  }
  const hash = parsed.href.indexOf('#');
  if (hash !== -1) {
    throw syntaxError(
      `Failed to construct '${who}': The URL contains a fragment identifier ('${parsed.href.slice(hash + 1)}'). Fragment identifiers are not allowed in WebSocket URLs.`,
    );
  }
  parsed.protocol = secure ? 'wss:' : 'ws:';
  const url = parsed.href;
  const origin = parsed.origin;
  parsed.protocol = secure ? 'https:' : 'http:';
  return { url, httpUrl: parsed.href, origin };
}

/** RFC 7230 token (the `Sec-WebSocket-Protocol` element syntax). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** WHATWG subprotocol rules: each a token, no duplicates (compared case-sensitively, as Chromium). */
function checkProtocols(protocols, who) {
  protocols.forEach((protocol, i) => {
    const problem = !TOKEN.test(protocol) ? 'invalid' : protocols.indexOf(protocol) < i ? 'duplicated' : null;
    if (problem) throw syntaxError(`Failed to construct '${who}': The subprotocol '${protocol}' is ${problem}.`);
  });
  return protocols;
}

/**
 * WHATWG `close()` argument rules: code 1000 or 3000-4999 else InvalidAccessError; reason at
 * most 123 UTF-8 bytes else SyntaxError. Returns [code, reason] for the Close frame (a reason
 * without a code is sent with 1000, as browsers do).
 */
function closeArguments(code, reason) {
  let c = clampCode(code);
  if (c !== undefined && c !== 1000 && !(c >= 3000 && c <= 4999)) {
    throw new DOMException(
      `Failed to execute 'close' on 'H2WebSocket': The close code must be either 1000, or between 3000 and 4999. ${c} is neither.`,
      'InvalidAccessError',
    );
  }
  const r = reason === undefined ? '' : String(reason);
  if (utf8.encode(r).byteLength > 123) {
    throw syntaxError("Failed to execute 'close' on 'H2WebSocket': The close reason must not be greater than 123 UTF-8 bytes.");
  }
  if (c === undefined && r !== '') c = 1000;
  return [c, r];
}

/** The close of a socket that ended before its core existed (closed early, or no wasm). */
const EARLY_FAILURE = { code: 1006, reason: '', wasClean: false };

function normalizeOptions(options, who) {
  const transport = options?.transport ?? 'auto';
  if (!TRANSPORTS.includes(transport)) {
    throw new TypeError(
      `Failed to construct '${who}': options.transport must be one of ${TRANSPORTS.join(', ')}.`,
    );
  }
  const headers = options?.headers === undefined ? [] : [...new Headers(options.headers)];
  return { transport, headers, resume: Boolean(options?.resume) };
}

/** Most bytes of sends kept while a `reconnect` socket waits for its next session. */
const RECONNECT_BUFFER = 1 << 20;

/**
 * The `reconnect` option: `true` for the defaults, or `{ minDelay, maxDelay, factor, jitter,
 * maxRetries }` (ms, ms, growth per failed attempt, the random share taken off each delay,
 * attempts in a row without an `open`). `null` when off.
 */
function normalizeReconnect(value, who) {
  if (value === undefined || value === false || value === null) return null;
  const given = value === true ? {} : value;
  if (typeof given !== 'object') {
    throw new TypeError(`Failed to construct '${who}': options.reconnect must be a boolean or an object.`);
  }
  const number = (name, fallback, min, max = Infinity) => {
    const v = given[name] === undefined ? fallback : Number(given[name]);
    if (!(v >= min && v <= max)) {
      throw new TypeError(`Failed to construct '${who}': options.reconnect.${name} must be a number from ${min} to ${max}.`);
    }
    return v;
  };
  const minDelay = number('minDelay', 1000, 0);
  return {
    minDelay,
    maxDelay: number('maxDelay', 30000, minDelay),
    factor: number('factor', 2, 1),
    jitter: number('jitter', 0.5, 0, 1),
    maxRetries: number('maxRetries', Infinity, 0),
  };
}

/** The wait before reconnect attempt `retries` (0 = the first after a close). */
function reconnectDelay(r, retries) {
  const base = Math.min(r.maxDelay, r.minDelay * r.factor ** retries);
  return base * (1 - r.jitter * Math.random());
}

function normalizeProtocols(protocols) {
  if (protocols === undefined) return [];
  if (typeof protocols === 'string') return [protocols];
  if (protocols !== null && typeof protocols[Symbol.iterator] === 'function') {
    return Array.from(protocols, String);
  }
  return [String(protocols)];
}

/** WebIDL [Clamp] unsigned short. */
function clampCode(code) {
  if (code === undefined) return undefined;
  let n = Number(code);
  if (Number.isNaN(n)) return 0;
  n = Math.min(Math.max(n, 0), 65535);
  const floor = Math.floor(n);
  const diff = n - floor;
  if (diff > 0.5 || (diff === 0.5 && floor % 2 === 1)) return floor + 1;
  return floor;
}

function bytesOf(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer) {
    return new Uint8Array(data);
  }
  return null;
}

const utf8 = new TextEncoder();

/** A `close` CloseEvent; Node before 23 has none, so there an Event with the same three fields. */
function closeEvent(init) {
  if (typeof CloseEvent === 'function') return new CloseEvent('close', init);
  return Object.assign(new Event('close'), init);
}

/**
 * A drop-in for the browser's WebSocket that rides fetch() streams on HTTP/2.
 * `new H2WebSocket(url, protocols?, { transport: 'auto'|'stream'|'post', headers, resume, reconnect })`.
 */
export class H2WebSocket extends EventTarget {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSING = CLOSING;
  static CLOSED = CLOSED;

  /** Per-origin cap on open sockets (default 100); past it a socket fails at once. */
  static set maxSocketsPerOrigin(max) {
    maxPerOrigin = Math.max(0, Math.floor(Number(max))) >>> 0;
    if (loaded) Core.set_max_sockets_per_origin(maxPerOrigin);
  }

  #core = null;
  /** readyState until the core exists: CONNECTING, or CLOSING/CLOSED after an early end. */
  #early = CONNECTING;
  /** bufferedAmount of sends after an early close (they only count, as after any close). */
  #earlyBuffered = 0;
  #url;
  #binaryType = 'blob';
  #handlers = new Map();
  #pending = null; // ordering chain while a Blob send is being read
  #origin;
  /** Starts a session (a core) with the constructor's arguments. */
  #start;
  /** Sessions started so far: events of an earlier one are ignored. */
  #session = 0;
  /** The `reconnect` option (null: off), and its state. */
  #reconnect = null;
  #userClosed = false;
  #retries = 0;
  #reconnectTimer = null;
  /** A reconnect is due or connecting: sends wait in #outbox (at most RECONNECT_BUFFER bytes). */
  #reconnecting = false;
  #outbox = [];
  #outboxBytes = 0;

  constructor(url, protocols = undefined, options = undefined) {
    super();
    if (arguments.length === 0) {
      throw new TypeError("Failed to construct 'H2WebSocket': 1 argument required, but only 0 present.");
    }
    const target = socketURL(url, 'H2WebSocket');
    const list = checkProtocols(normalizeProtocols(protocols), 'H2WebSocket');
    const { transport, headers, resume } = normalizeOptions(options, 'H2WebSocket');
    this.#reconnect = normalizeReconnect(options?.reconnect, 'H2WebSocket');
    this.#url = target.url;
    this.#origin = target.origin;
    this.#start = () => {
      const session = ++this.#session;
      const emit = (kind, data) => { if (session === this.#session) this.#emit(kind, data); };
      withCore(
        () => {
          this.#core = new Core(target.url, target.httpUrl, target.origin, list, transport,
            requestStreamingSupported(), headers, emit, false, resume);
        },
        () => session === this.#session && this.#early === CONNECTING,
        () => { if (session === this.#session) this.#failEarly(); },
      );
    };
    this.#start();
  }

  get url() { return this.#url; }
  get readyState() { return this.#core?.readyState ?? this.#early; }
  get bufferedAmount() {
    if (this.#reconnecting) return this.#outboxBytes;
    return this.#core?.bufferedAmount ?? this.#earlyBuffered;
  }
  get protocol() { return this.#core?.protocol ?? ''; }
  get extensions() { return this.#core?.extensions ?? ''; }
  get binaryType() { return this.#binaryType; }
  set binaryType(value) {
    // An enumerated attribute ignores values outside its enum.
    if (value === 'blob' || value === 'arraybuffer') this.#binaryType = value;
  }

  send(data) {
    if (arguments.length === 0) {
      throw new TypeError("Failed to execute 'send' on 'H2WebSocket': 1 argument required, but only 0 present.");
    }
    if (this.#reconnecting) {
      this.#hold(data);
      return;
    }
    if (this.readyState === CONNECTING) {
      throw new DOMException("Failed to execute 'send' on 'H2WebSocket': Still in CONNECTING state.", 'InvalidStateError');
    }
    const core = this.#core;
    if (core === null) {
      // Closed before the wasm loaded: the send only counts.
      this.#earlyBuffered += data instanceof Blob ? data.size : (bytesOf(data) ?? utf8.encode(String(data))).byteLength;
      return;
    }
    if (data instanceof Blob) {
      core.reserve(data.size);
      this.#chain(() => data.arrayBuffer().then((buffer) => core.send_reserved_bytes(new Uint8Array(buffer))));
      return;
    }
    const bytes = bytesOf(data);
    if (bytes !== null) {
      if (this.#pending === null) {
        core.send_bytes(bytes);
      } else {
        core.reserve(bytes.byteLength);
        const copy = bytes.slice();
        this.#chain(() => core.send_reserved_bytes(copy));
      }
      return;
    }
    const text = String(data);
    if (this.#pending === null) {
      core.send_text(text);
    } else {
      core.reserve(utf8.encode(text).byteLength);
      this.#chain(() => core.send_reserved_text(text));
    }
  }

  #chain(step) {
    const next = (this.#pending ?? Promise.resolve()).then(step).catch(() => {});
    this.#pending = next;
    next.then(() => {
      if (this.#pending === next) this.#pending = null;
    });
  }

  /** `reconnect`: a send while the next session is due waits for its `open` (bounded). */
  #hold(data) {
    const size = data instanceof Blob ? data.size : (bytesOf(data) ?? utf8.encode(String(data))).byteLength;
    if (this.#outboxBytes + size > RECONNECT_BUFFER) {
      console.warn(`h2ws: ${this.#url} is reconnecting and already holds ${this.#outboxBytes} bytes of sends; this one (${size} bytes) is dropped.`);
      return;
    }
    const bytes = bytesOf(data);
    this.#outbox.push(bytes !== null ? bytes.slice() : data instanceof Blob ? data : String(data));
    this.#outboxBytes += size;
  }

  close(code = undefined, reason = undefined) {
    const [c, r] = closeArguments(code, reason);
    this.#userClosed = true;
    if (this.#reconnectTimer !== null) {
      // Closed while waiting to reconnect: no new session; the held sends are dropped.
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
      this.#reconnecting = false;
      this.#outbox = [];
      this.#outboxBytes = 0;
      return;
    }
    if (this.#core !== null) {
      this.#core.close(c, r);
    } else if (this.#early === CONNECTING) {
      // Closed before the wasm loaded: fail the connection (CLOSING now, then error and
      // close 1006 in a later task, as when the open request is aborted).
      this.#early = CLOSING;
      setTimeout(() => this.#failEarly(), 0);
    }
  }

  /** The WHATWG failure sequence for a socket without a core: CLOSED, `error`, `close` 1006. */
  #failEarly() {
    if (this.#early === CLOSED) return;
    this.#early = CLOSED;
    this.#emit(EMIT_ERROR);
    this.#emit(EMIT_CLOSE, EARLY_FAILURE);
  }

  #emit(kind, data) {
    switch (kind) {
      case EMIT_OPEN: {
        this.#retries = 0;
        // Sends held while reconnecting go first, in order (as partysocket).
        const held = this.#outbox;
        this.#reconnecting = false;
        this.#outbox = [];
        this.#outboxBytes = 0;
        for (const data of held) this.send(data);
        this.dispatchEvent(new Event('open'));
        break;
      }
      case EMIT_MESSAGE: {
        let value = data;
        if (typeof value !== 'string') {
          value = this.#binaryType === 'blob' ? new Blob([value]) : value.buffer;
        }
        this.dispatchEvent(new MessageEvent('message', { data: value, origin: this.#origin }));
        break;
      }
      case EMIT_ERROR:
        this.dispatchEvent(new Event('error'));
        break;
      case EMIT_CLOSE: {
        const r = this.#reconnect;
        // Decided before the event, so that sends from its listeners are held; a listener
        // that calls close() still stops it.
        this.#reconnecting = r !== null && !this.#userClosed && data.code !== 1000 &&
          data.code !== 1001 && this.#retries < r.maxRetries;
        this.dispatchEvent(closeEvent({ code: data.code, reason: data.reason, wasClean: data.wasClean }));
        this.#maybeReconnect();
        break;
      }
    }
  }

  /**
   * `reconnect`: after a close the page did not ask for, other than 1000 / 1001 (a failed
   * open, a failed resume, a server's error close), a new session on this object after a
   * backoff; `open` fires again when it is up. `maxRetries` attempts in a row without `open`.
   */
  #maybeReconnect() {
    const r = this.#reconnect;
    if (!this.#reconnecting || this.#userClosed) {
      this.#reconnecting = false;
      this.#outbox = [];
      this.#outboxBytes = 0;
      return;
    }
    const delay = reconnectDelay(r, this.#retries);
    this.#retries += 1;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#core = null;
      this.#early = CONNECTING;
      this.#earlyBuffered = 0;
      this.#start();
    }, delay);
  }

  #getHandler(type) {
    return this.#handlers.get(type)?.handler ?? null;
  }

  // HTML event handler attributes: the listener keeps the position where it was first set.
  #setHandler(type, handler) {
    const entry = this.#handlers.get(type);
    if (typeof handler !== 'function' && (typeof handler !== 'object' || handler === null)) {
      if (entry) {
        this.removeEventListener(type, entry.listener);
        this.#handlers.delete(type);
      }
      return;
    }
    if (entry) {
      entry.handler = handler;
      return;
    }
    const record = { handler, listener: null };
    record.listener = (event) => {
      const h = record.handler;
      if (typeof h === 'function') h.call(this, event);
    };
    this.#handlers.set(type, record);
    this.addEventListener(type, record.listener);
  }

  get onopen() { return this.#getHandler('open'); }
  set onopen(h) { this.#setHandler('open', h); }
  get onmessage() { return this.#getHandler('message'); }
  set onmessage(h) { this.#setHandler('message', h); }
  get onerror() { return this.#getHandler('error'); }
  set onerror(h) { this.#setHandler('error', h); }
  get onclose() { return this.#getHandler('close'); }
  set onclose(h) { this.#setHandler('close', h); }

  get [Symbol.toStringTag]() { return 'H2WebSocket'; }
}

for (const [name, value] of Object.entries({ CONNECTING, OPEN, CLOSING, CLOSED })) {
  Object.defineProperty(H2WebSocket.prototype, name, { value, enumerable: true });
  Object.defineProperty(H2WebSocket, name, { value, enumerable: true });
}

/** The error `closed` rejects with on an unclean end (as WebSocketStream's WebSocketError). */
export class H2WebSocketError extends DOMException {
  #closeCode;
  #reason;
  constructor(message = '', { closeCode = null, reason = '' } = {}) {
    super(message, 'WebSocketError');
    this.#closeCode = closeCode;
    this.#reason = reason;
  }
  get closeCode() { return this.#closeCode; }
  get reason() { return this.#reason; }
}

/**
 * The WebSocketStream shape with real backpressure:
 * `const { readable, writable, protocol, extensions } = await new H2WebSocketStream(url).opened`.
 */
export class H2WebSocketStream {
  #core = null;
  /** Closed (or aborted) before the wasm loaded, or the wasm failed: no core will come. */
  #earlyEnd = false;
  #opened;
  #closed;
  #url;
  #readableController = null;
  #writableController = null;
  #ended = null; // { code, reason, wasClean }
  #abortReason = null;

  constructor(url, options = undefined) {
    if (arguments.length === 0) {
      throw new TypeError("Failed to construct 'H2WebSocketStream': 1 argument required, but only 0 present.");
    }
    const target = socketURL(url, 'H2WebSocketStream');
    const list = checkProtocols(normalizeProtocols(options?.protocols), 'H2WebSocketStream');
    const { transport, headers, resume } = normalizeOptions(options, 'H2WebSocketStream');
    this.#url = target.url;
    this.#opened = deferred();
    this.#closed = deferred();
    this.opened = this.#opened.promise;
    this.closed = this.#closed.promise;
    // As WebSocketStream: these promises never count as unhandled rejections.
    this.opened.catch(() => {});
    this.closed.catch(() => {});
    const signal = options?.signal;
    if (signal?.aborted) {
      const reason = signal.reason ?? new DOMException('aborted', 'AbortError');
      this.#earlyEnd = true;
      this.#opened.reject(reason);
      this.#closed.reject(reason);
      return;
    }
    withCore(
      () => {
        this.#core = new Core(target.url, target.httpUrl, target.origin, list, transport,
          requestStreamingSupported(), headers, (kind, data) => this.#emit(kind, data), true, resume);
      },
      () => !this.#earlyEnd,
      () => this.#failEarly(),
    );
    // As WebSocketStream: aborting while CONNECTING fails the handshake; `opened` and `closed`
    // reject with the signal's reason.
    signal?.addEventListener('abort', () => {
      if (this.#earlyEnd || (this.#core !== null && this.#core.readyState !== CONNECTING)) return;
      this.#abortReason = signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
      this.close();
    }, { once: true });
  }

  get url() { return this.#url; }

  close(closeInfo = undefined) {
    const [code, reason] = closeArguments(closeInfo?.closeCode ?? undefined, closeInfo?.reason);
    if (this.#core !== null) {
      this.#core.close(code, reason);
    } else if (!this.#earlyEnd) {
      // Closed before the wasm loaded: the handshake fails, as when the open request is aborted.
      this.#earlyEnd = true;
      setTimeout(() => this.#emit(EMIT_CLOSE, EARLY_FAILURE), 0);
    }
  }

  #failEarly() {
    if (this.#earlyEnd) return;
    this.#earlyEnd = true;
    this.#emit(EMIT_CLOSE, EARLY_FAILURE);
  }

  #emit(kind, data) {
    const core = this.#core;
    switch (kind) {
      case EMIT_OPEN: {
        const readable = new ReadableStream({
          start: (controller) => { this.#readableController = controller; },
          pull: (controller) => core.pull().then((message) => {
            if (message === null) this.#endReadable();
            else controller.enqueue(message);
          }),
          cancel: () => this.close(),
        }, { highWaterMark: 1 });
        const writable = new WritableStream({
          start: (controller) => { this.#writableController = controller; },
          write: (chunk) => {
            const text = typeof chunk === 'string';
            const bytes = text ? null : bytesOf(chunk);
            if (!text && bytes === null) throw new TypeError('H2WebSocketStream writes strings or BufferSource chunks.');
            if (core.readyState !== OPEN) throw new DOMException('The H2WebSocketStream is not open.', 'InvalidStateError');
            return text ? core.send_text(chunk) : core.send_bytes(bytes);
          },
          close: () => this.close(),
          abort: () => this.close(),
        }, { highWaterMark: 1 });
        this.#opened.resolve({ readable, writable, protocol: core.protocol, extensions: core.extensions });
        break;
      }
      case EMIT_CLOSE: {
        this.#ended = data;
        if (data.wasClean) {
          this.#closed.resolve({ closeCode: data.code, reason: data.reason });
        } else {
          const error = this.#abortReason ?? new H2WebSocketError('The connection closed abnormally.', {
            closeCode: data.code, reason: data.reason,
          });
          this.#opened.reject(error);
          this.#closed.reject(error);
        }
        this.#endReadable();
        try { this.#writableController?.error(new DOMException('The socket is closed.', 'InvalidStateError')); } catch {}
        break;
      }
      default:
        break;
    }
  }

  #endReadable() {
    const controller = this.#readableController;
    if (controller === null || this.#ended === null) return;
    this.#readableController = null;
    try {
      if (this.#ended.wasClean) controller.close();
      else controller.error(new H2WebSocketError('The connection closed abnormally.', { closeCode: this.#ended.code }));
    } catch {}
  }
}

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

export default H2WebSocket;
