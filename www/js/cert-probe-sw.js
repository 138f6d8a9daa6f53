// Empty on purpose: registering it is how the demo learns whether the browser trusts the
// server's certificate (Chromium refuses service workers from untrusted origins). See diagnostics.js.
