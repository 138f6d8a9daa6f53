// Types for the npm package `h2ws`.

export type H2Transport = 'auto' | 'stream' | 'post';

/** Where the wasm core comes from (what `ready()` accepts). */
export type H2WasmSource = string | URL | Request | Response | BufferSource | WebAssembly.Module;

/**
 * Loads the wasm core (once; sockets load it themselves on first use, so this is optional).
 * Call it early to preload, or with the wasm's URL, bytes or module when the bundler does not
 * emit `h2ws_wasm_bg.wasm` or outside a browser. The first call decides the source. Rejects when
 * the wasm cannot load (sockets waiting for it fail: `error`, then `close` 1006).
 */
export declare function ready(wasm?: H2WasmSource | Promise<H2WasmSource>): Promise<void>;

export interface H2SocketOptions {
  /** `auto` (default): `stream` when request streaming works and the server offers it, else `post`. */
  transport?: H2Transport;
  /** Extra request headers (e.g. `Authorization`) sent with the open and upstream requests. */
  headers?: HeadersInit;
  /**
   * Offer lossless resume: if the server agrees, a lost connection is re-attached within the
   * server's grace window with nothing lost, duplicated or reordered, and no event; else the
   * socket fails as without it (`error`, `close` 1006).
   */
  resume?: boolean;
}

/** `reconnect` of `H2WebSocket`: a new session after an unexpected close (see the README). */
export interface H2ReconnectOptions {
  /** First wait, ms (default 1000). */
  minDelay?: number;
  /** Longest wait, ms (default 30000). */
  maxDelay?: number;
  /** Growth of the wait per failed attempt (default 2). */
  factor?: number;
  /** Share of each wait taken off at random, 0 to 1 (default 0.5). */
  jitter?: number;
  /** Attempts in a row without `open` before giving up (default Infinity). */
  maxRetries?: number;
}

export interface H2WebSocketOptions extends H2SocketOptions {
  /**
   * After a close the page did not ask for, other than 1000/1001 (a failed open or resume, a
   * server's error close): open a new session on the same object (`open` fires again). Sends
   * while it reconnects are held (up to 1 MiB) and sent on `open`.
   */
  reconnect?: boolean | H2ReconnectOptions;
}

export interface H2WebSocketEventMap {
  open: Event;
  message: MessageEvent;
  error: Event;
  close: CloseEvent;
}

/** The WHATWG `WebSocket` interface over fetch() streams on HTTP/2. */
export declare class H2WebSocket extends EventTarget {
  constructor(url: string | URL, protocols?: string | string[], options?: H2WebSocketOptions);
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  /** Per-origin cap on open sockets (default 100). */
  static set maxSocketsPerOrigin(max: number);
  readonly url: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  readonly protocol: string;
  readonly extensions: string;
  binaryType: BinaryType;
  onopen: ((this: H2WebSocket, ev: Event) => any) | null;
  onmessage: ((this: H2WebSocket, ev: MessageEvent) => any) | null;
  onerror: ((this: H2WebSocket, ev: Event) => any) | null;
  onclose: ((this: H2WebSocket, ev: CloseEvent) => any) | null;
  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener<K extends keyof H2WebSocketEventMap>(
    type: K,
    listener: (this: H2WebSocket, ev: H2WebSocketEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof H2WebSocketEventMap>(
    type: K,
    listener: (this: H2WebSocket, ev: H2WebSocketEventMap[K]) => any,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions,
  ): void;
}

export interface H2WebSocketStreamOptions extends H2SocketOptions {
  protocols?: string[];
  signal?: AbortSignal;
}

export interface H2WebSocketOpenInfo {
  /** Messages: `string` for text, `Uint8Array` for binary. */
  readable: ReadableStream<string | Uint8Array>;
  writable: WritableStream<string | BufferSource>;
  protocol: string;
  extensions: string;
}

export interface H2WebSocketCloseInfo {
  closeCode?: number;
  reason?: string;
}

/** Rejection value of `opened`/`closed` after an unclean end. */
export declare class H2WebSocketError extends DOMException {
  constructor(message?: string, init?: { closeCode?: number | null; reason?: string });
  readonly closeCode: number | null;
  readonly reason: string;
}

/** The WebSocketStream shape with real backpressure. */
export declare class H2WebSocketStream {
  constructor(url: string | URL, options?: H2WebSocketStreamOptions);
  readonly url: string;
  readonly opened: Promise<H2WebSocketOpenInfo>;
  readonly closed: Promise<{ closeCode: number; reason: string }>;
  close(closeInfo?: H2WebSocketCloseInfo): void;
}

export default H2WebSocket;
