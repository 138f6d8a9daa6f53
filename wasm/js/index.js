// h2ws: WebSockets over fetch() streams on HTTP/2.
//
// The thin JS layer: an EventTarget class with the WHATWG WebSocket surface and the
// WebSocketStream shape. Protocol, state and transports live in the wasm core (`Core`).
import init, { Core } from './h2ws_wasm.js';

await init({ module_or_path: new URL('./h2ws_wasm_bg.wasm', import.meta.url) });

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;
const TRANSPORTS = ['auto', 'stream', 'post'];

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

function normalizeOptions(options, who) {
  const transport = options?.transport ?? 'auto';
  if (!TRANSPORTS.includes(transport)) {
    throw new TypeError(
      `Failed to construct '${who}': options.transport must be one of ${TRANSPORTS.join(', ')}.`,
    );
  }
  const headers = options?.headers === undefined ? [] : [...new Headers(options.headers)];
  return { transport, headers };
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

/**
 * A drop-in for the browser's WebSocket that rides fetch() streams on HTTP/2.
 * `new H2WebSocket(url, protocols?, { transport: 'auto'|'stream'|'post', headers })`.
 */
export class H2WebSocket extends EventTarget {
  static CONNECTING = CONNECTING;
  static OPEN = OPEN;
  static CLOSING = CLOSING;
  static CLOSED = CLOSED;

  /** Per-origin cap on open sockets (default 100); past it a socket fails at once. */
  static set maxSocketsPerOrigin(max) {
    Core.set_max_sockets_per_origin(Math.max(0, Math.floor(Number(max))) >>> 0);
  }

  #core;
  #binaryType = 'blob';
  #handlers = new Map();
  #pending = null; // ordering chain while a Blob send is being read
  #origin;

  constructor(url, protocols = undefined, options = undefined) {
    super();
    if (arguments.length === 0) {
      throw new TypeError("Failed to construct 'H2WebSocket': 1 argument required, but only 0 present.");
    }
    const { transport, headers } = normalizeOptions(options, 'H2WebSocket');
    this.#core = new Core(
      String(url),
      baseURL(),
      normalizeProtocols(protocols),
      transport,
      requestStreamingSupported(),
      headers,
      (kind, data) => this.#emit(kind, data),
      false,
    );
    this.#origin = this.#core.origin;
  }

  get url() { return this.#core.url; }
  get readyState() { return this.#core.readyState; }
  get bufferedAmount() { return this.#core.bufferedAmount; }
  get protocol() { return this.#core.protocol; }
  get extensions() { return this.#core.extensions; }
  get binaryType() { return this.#binaryType; }
  set binaryType(value) {
    // An enumerated attribute ignores values outside its enum.
    if (value === 'blob' || value === 'arraybuffer') this.#binaryType = value;
  }

  send(data) {
    if (arguments.length === 0) {
      throw new TypeError("Failed to execute 'send' on 'H2WebSocket': 1 argument required, but only 0 present.");
    }
    const core = this.#core;
    if (data instanceof Blob) {
      core.reserve(data.size); // throws InvalidStateError while CONNECTING
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

  close(code = undefined, reason = undefined) {
    this.#core.close(clampCode(code), reason === undefined ? undefined : String(reason));
  }

  #emit(kind, data) {
    switch (kind) {
      case 'open':
        this.dispatchEvent(new Event('open'));
        break;
      case 'message': {
        let value = data;
        if (typeof value !== 'string') {
          value = this.#binaryType === 'blob' ? new Blob([value]) : value.buffer;
        }
        this.dispatchEvent(new MessageEvent('message', { data: value, origin: this.#origin }));
        break;
      }
      case 'error':
        this.dispatchEvent(new Event('error'));
        break;
      case 'close':
        this.dispatchEvent(
          new CloseEvent('close', { code: data.code, reason: data.reason, wasClean: data.wasClean }),
        );
        break;
    }
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
  #core;
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
    const { transport, headers } = normalizeOptions(options, 'H2WebSocketStream');
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
      this.#opened.reject(reason);
      this.#closed.reject(reason);
      return;
    }
    this.#core = new Core(
      String(url),
      baseURL(),
      normalizeProtocols(options?.protocols),
      transport,
      requestStreamingSupported(),
      headers,
      (kind, data) => this.#emit(kind, data),
      true,
    );
    this.#url = this.#core.url;
    // As WebSocketStream: aborting while CONNECTING fails the handshake; `opened` and `closed`
    // reject with the signal's reason.
    signal?.addEventListener('abort', () => {
      if (this.#core.readyState !== CONNECTING) return;
      this.#abortReason = signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
      this.#core.close(undefined, undefined);
    }, { once: true });
  }

  get url() { return this.#url; }

  close(closeInfo = undefined) {
    const code = closeInfo?.closeCode;
    const reason = closeInfo?.reason;
    this.#core?.close(clampCode(code ?? undefined), reason === undefined ? undefined : String(reason));
  }

  #emit(kind, data) {
    const core = this.#core;
    switch (kind) {
      case 'open': {
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
            if (typeof chunk === 'string') return core.write_text(chunk);
            const bytes = bytesOf(chunk);
            if (bytes === null) throw new TypeError('H2WebSocketStream writes strings or BufferSource chunks.');
            return core.write_bytes(bytes);
          },
          close: () => this.close(),
          abort: () => this.close(),
        }, { highWaterMark: 1 });
        this.#opened.resolve({ readable, writable, protocol: core.protocol, extensions: core.extensions });
        break;
      }
      case 'close': {
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
