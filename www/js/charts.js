// Statistics and inline-SVG charts (no library).

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, v);
  for (const c of children) if (c != null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Nearest-rank percentile of an ascending-sorted array. */
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(samples) {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    n,
    min: n ? sorted[0] : NaN,
    max: n ? sorted[n - 1] : NaN,
    mean: n ? sum / n : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

// Log-spaced bins: 4 per octave from 1/64 ms (≈16 µs) up — wide enough for loopback and WAN.
const BINS_PER_OCTAVE = 4;
const BIN_BASE_MS = 1 / 64;
export const binOf = (ms) => Math.max(0, Math.floor(Math.log2(Math.max(ms, BIN_BASE_MS) / BIN_BASE_MS) * BINS_PER_OCTAVE));
export const binEdge = (i) => BIN_BASE_MS * 2 ** (i / BINS_PER_OCTAVE);

function fmtEdge(ms) {
  if (ms < 1) return `${Math.round(ms * 1000)}µs`;
  if (ms < 10) return `${+ms.toFixed(1)}ms`;
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${+(ms / 1000).toFixed(1)}s`;
}

/**
 * Histogram of RTTs (ms) over bins [lo, hi] (shared between columns so they compare), log x axis.
 * Marks p50 and p99.
 */
export function histogramSvg(samples, { lo, hi, p50, p99, width = 320, height = 132 }) {
  const counts = new Array(hi - lo + 1).fill(0);
  for (const v of samples) {
    const b = Math.min(hi, Math.max(lo, binOf(v)));
    counts[b - lo]++;
  }
  const max = Math.max(1, ...counts);
  const pad = { l: 4, r: 4, t: 28, b: 18 }; // room above the bars for the p50/p99 labels
  const w = width - pad.l - pad.r;
  const hh = height - pad.t - pad.b;
  const bw = w / counts.length;
  const x = (ms) => pad.l + ((Math.log2(ms / BIN_BASE_MS) * BINS_PER_OCTAVE - lo) / counts.length) * w;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'hist', role: 'img', 'aria-label': 'RTT histogram' });
  counts.forEach((c, i) => {
    if (!c) return;
    const bh = Math.max(1.5, (c / max) * hh);
    svg.append(
      s('rect', { x: pad.l + i * bw + 0.5, y: pad.t + hh - bh, width: Math.max(1, bw - 1), height: bh, class: 'bar' },
        s('title', {}, `${fmtEdge(binEdge(lo + i))}–${fmtEdge(binEdge(lo + i + 1))}: ${c}`)),
    );
  });
  svg.append(s('line', { x1: pad.l, x2: pad.l + w, y1: pad.t + hh + 0.5, y2: pad.t + hh + 0.5, class: 'axis' }));
  // Ticks at whole octaves, thinned to fit.
  const octaves = [];
  for (let i = Math.ceil(lo / BINS_PER_OCTAVE) * BINS_PER_OCTAVE; i <= hi + 1; i += BINS_PER_OCTAVE) octaves.push(i);
  const step = Math.ceil(octaves.length / 6);
  octaves.forEach((i, k) => {
    if (k % step) return;
    const xx = pad.l + ((i - lo) / counts.length) * w;
    svg.append(s('line', { x1: xx, x2: xx, y1: pad.t + hh, y2: pad.t + hh + 3, class: 'axis' }));
    const anchor = xx < pad.l + 16 ? 'start' : xx > pad.l + w - 16 ? 'end' : 'middle'; // never clipped
    svg.append(s('text', { x: xx, y: height - 4, class: 'tick', 'text-anchor': anchor }, fmtEdge(binEdge(i))));
  });
  for (const [v, name] of [[p50, 'p50'], [p99, 'p99']]) {
    if (!Number.isFinite(v)) continue;
    const xx = Math.min(pad.l + w, Math.max(pad.l, x(Math.max(v, BIN_BASE_MS))));
    svg.append(s('line', { x1: xx, x2: xx, y1: name === 'p99' ? 14 : 2, y2: pad.t + hh, class: `mark ${name}` }));
    const right = xx > pad.l + w - 28; // near the right edge: label on the line's left
    const y = name === 'p99' ? 22 : 10; // two lines: the marks may be close
    svg.append(s('text', { x: right ? xx - 3 : xx + 3, y, class: `mark-label ${name}`, 'text-anchor': right ? 'end' : 'start' }, name));
  }
  return svg;
}

/**
 * Line chart of several series over time. series: [{name, cls, points: [[t, v], …]}].
 * yFmt formats axis values.
 */
export function lineChartSvg(series, { width = 640, height = 240, yFmt = String, xLabel = 's', bytes = false } = {}) {
  const pad = { l: 64, r: 12, t: 12, b: 24 };
  const w = width - pad.l - pad.r;
  const hh = height - pad.t - pad.b;
  let tMax = 1;
  let yMax = 1;
  for (const { points } of series) {
    for (const [t, v] of points) {
      tMax = Math.max(tMax, t);
      yMax = Math.max(yMax, v);
    }
  }
  yMax = bytes ? niceBytes(yMax) : niceCeil(yMax);
  const X = (t) => pad.l + (t / tMax) * w;
  const Y = (v) => pad.t + hh - (v / yMax) * hh;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'lines', role: 'img', 'aria-label': 'bytes over time' });
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    svg.append(s('line', { x1: pad.l, x2: pad.l + w, y1: Y(v), y2: Y(v), class: k ? 'grid' : 'axis' }));
    svg.append(s('text', { x: pad.l - 6, y: Y(v) + 4, class: 'tick', 'text-anchor': 'end' }, yFmt(v)));
  }
  const tStep = niceCeil(tMax / 6);
  for (let t = 0; t <= tMax + 1e-9; t += tStep) {
    svg.append(s('text', { x: X(t), y: height - 6, class: 'tick', 'text-anchor': 'middle' }, `${+t.toFixed(2)}${xLabel}`));
  }
  for (const { cls, points } of series) {
    if (!points.length) continue;
    const d = points.map(([t, v], i) => `${i ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join('');
    svg.append(s('path', { d, class: `series ${cls}` }));
  }
  return svg;
}

/** A round binary ceiling (1, 2, 4 or 8 × a power of 1024 … in quarters), so byte ticks read well. */
function niceBytes(v) {
  let unit = 1;
  while (v / unit >= 1024) unit *= 1024;
  const x = v / unit;
  for (const m of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]) if (m >= x) return m * unit;
  return 1024 * unit;
}

function niceCeil(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
