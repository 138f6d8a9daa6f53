// esbuild's entry: esbuild does not emit files referenced by `new URL(..., import.meta.url)`,
// so the app imports the wasm's URL (file loader) and hands it to ready() before any socket
// (wasm-url.js is imported first, so it runs first).
import './wasm-url.js';
import './main.js';
