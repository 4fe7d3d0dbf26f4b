// Small inline SVG charts (no library): a histogram, a line over dates, bars per quantile.
// Each is an `img` with an accessible name; its <title> and <desc> say what it shows.

const NS = "http://www.w3.org/2000/svg";
const W = 480, H = 200, PAD = { l: 52, r: 10, t: 12, b: 30 };

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function fmt(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e6 || a < 1e-4) return x.toExponential(2);
  return Number(x.toPrecision(digits)).toString();
}

function frame(label, description) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  svg.appendChild(el("title", {}, label));
  svg.appendChild(el("desc", {}, description));
  return svg;
}

function yScale(lo, hi) {
  if (lo === hi) { lo -= 1; hi += 1; }
  const span = hi - lo;
  lo -= span * 0.05; hi += span * 0.05;
  const h = H - PAD.t - PAD.b;
  return { lo, hi, y: (v) => PAD.t + h - ((v - lo) / (hi - lo)) * h };
}

function yAxis(svg, s, whole = false) {
  const seen = new Set();
  for (let i = 0; i <= 4; i++) {
    let v = s.lo + ((s.hi - s.lo) * i) / 4;
    if (whole) v = Math.round(v);
    if (seen.has(v)) continue;
    seen.add(v);
    const y = s.y(v);
    svg.appendChild(el("line", { class: "grid", x1: PAD.l, x2: W - PAD.r, y1: y, y2: y }));
    svg.appendChild(el("text", { x: PAD.l - 4, y: y + 4, "text-anchor": "end" }, fmt(v, 3)));
  }
  svg.appendChild(el("line", { class: "axis", x1: PAD.l, x2: PAD.l, y1: PAD.t, y2: H - PAD.b }));
}

function empty(host, label, why) {
  const svg = frame(label, why);
  svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, why));
  host.replaceChildren(svg);
}

export function histogram(host, values, label) {
  const xs = values.filter((v) => Number.isFinite(v));
  if (!xs.length) { host.replaceChildren(); return; }
  let lo = Math.min(...xs), hi = Math.max(...xs);
  if (lo === hi) { lo -= 0.5; hi += 0.5; }
  const bins = Math.max(5, Math.min(30, Math.ceil(Math.sqrt(xs.length))));
  const counts = new Array(bins).fill(0);
  for (const v of xs) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]++;
  const svg = frame(label, `${xs.length} values from ${fmt(lo)} to ${fmt(hi)} in ${bins} bins`);
  const s = yScale(0, Math.max(...counts));
  s.lo = 0;
  yAxis(svg, s, true);
  const w = (W - PAD.l - PAD.r) / bins;
  counts.forEach((c, i) => {
    const x = PAD.l + i * w, y = s.y(c);
    const bar = el("rect", { class: "bar", x: x + 1, y, width: Math.max(1, w - 2),
      height: s.y(0) - y });
    bar.appendChild(el("title", {}, `${fmt(lo + (i * (hi - lo)) / bins)} to ` +
      `${fmt(lo + ((i + 1) * (hi - lo)) / bins)}: ${c}`));
    svg.appendChild(bar);
  });
  svg.appendChild(el("text", { x: PAD.l, y: H - 8 }, fmt(lo)));
  svg.appendChild(el("text", { x: W - PAD.r, y: H - 8, "text-anchor": "end" }, fmt(hi)));
  host.replaceChildren(svg);
}

export function icOverTime(host, series, mean) {
  const label = "IC over time";
  const points = (series || []).filter(([, v]) => Number.isFinite(v));
  if (!points.length) { empty(host, label, "no IC for this horizon"); return; }
  const vals = points.map(([, v]) => v);
  const s = yScale(Math.min(0, ...vals), Math.max(0, ...vals));
  const svg = frame(label, `${points.length} dates from ${points[0][0]} to ` +
    `${points[points.length - 1][0]}; mean IC ${fmt(mean)}`);
  yAxis(svg, s);
  const x = (i) => PAD.l + (points.length === 1 ? 0.5 : i / (points.length - 1)) *
    (W - PAD.l - PAD.r);
  svg.appendChild(el("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: s.y(0), y2: s.y(0) }));
  const d = points.map(([, v], i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${s.y(v).toFixed(1)}`);
  svg.appendChild(el("path", { class: "line", d: d.join(" ") }));
  if (Number.isFinite(mean)) {
    svg.appendChild(el("line", { class: "mean", x1: PAD.l, x2: W - PAD.r, y1: s.y(mean),
      y2: s.y(mean) }));
  }
  svg.appendChild(el("text", { x: PAD.l, y: H - 8 }, points[0][0]));
  svg.appendChild(el("text", { x: W - PAD.r, y: H - 8, "text-anchor": "end" },
    points[points.length - 1][0]));
  host.replaceChildren(svg);
}

export function quantileReturns(host, returns) {
  const label = "Quantile returns";
  const vals = (returns || []).map((v) => (Number.isFinite(v) ? v : 0));
  if (!vals.length) { empty(host, label, "no quantile figures for this horizon"); return; }
  const s = yScale(Math.min(0, ...vals), Math.max(0, ...vals));
  const svg = frame(label, vals.map((v, i) => `quantile ${i + 1}: ${fmt(v)}`).join("; "));
  yAxis(svg, s);
  const w = (W - PAD.l - PAD.r) / vals.length;
  vals.forEach((v, i) => {
    const top = Math.min(s.y(v), s.y(0)), h = Math.abs(s.y(v) - s.y(0));
    const bar = el("rect", { class: v < 0 ? "bar neg" : "bar", x: PAD.l + i * w + w * 0.15,
      y: top, width: w * 0.7, height: Math.max(1, h) });
    bar.appendChild(el("title", {}, `quantile ${i + 1}: ${fmt(v)}`));
    svg.appendChild(bar);
    svg.appendChild(el("text", { x: PAD.l + i * w + w / 2, y: H - 12, "text-anchor": "middle" },
      `Q${i + 1}`));
  });
  svg.appendChild(el("line", { class: "axis", x1: PAD.l, x2: W - PAD.r, y1: s.y(0), y2: s.y(0) }));
  host.replaceChildren(svg);
}
