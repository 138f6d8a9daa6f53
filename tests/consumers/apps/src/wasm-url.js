import { ready } from 'h2ws';
import wasm from 'h2ws/h2ws_wasm_bg.wasm';

ready(wasm);
