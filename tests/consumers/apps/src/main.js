// The app's entry: runs the echo and reports to the test (window.result, then h2wsReady).
import { echo } from './echo.js';

echo(document.title).then(
  (result) => { window.result = result; },
  (error) => { window.result = { error: String(error) }; },
).finally(() => { window.h2wsReady = true; });
