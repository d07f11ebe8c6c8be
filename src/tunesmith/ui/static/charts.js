// Small SVG charts drawn without any library: line charts (loss, lr) and histograms (token lengths).
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 560, H = 220, PAD = {l: 52, r: 12, t: 10, b: 28};

  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function fmt(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1000 || a < 0.01) return v.toExponential(1);
    return a >= 10 ? v.toFixed(0) : v.toFixed(2);
  }

  function ticks(lo, hi, n) {
    if (hi === lo) return [lo];
    return Array.from({length: n + 1}, (_, i) => lo + (hi - lo) * i / n);
  }

  function frame(svg, xlo, xhi, ylo, yhi, yfmt = fmt) {
    const sx = x => PAD.l + (xhi === xlo ? 0.5 : (x - xlo) / (xhi - xlo)) * (W - PAD.l - PAD.r);
    const sy = y => H - PAD.b - (yhi === ylo ? 0.5 : (y - ylo) / (yhi - ylo)) * (H - PAD.t - PAD.b);
    const step = Math.max(1, Math.ceil((yhi - ylo) / 4));  // counts: evenly spaced whole numbers
    const yticks = yfmt === fmt ? ticks(ylo, yhi, 4) : Array.from({length: Math.floor((yhi - ylo) / step) + 1}, (_, i) => ylo + i * step);
    for (const t of yticks) {
      el("line", {x1: PAD.l, x2: W - PAD.r, y1: sy(t), y2: sy(t), stroke: "#e3e6ec"}, svg);
      el("text", {x: PAD.l - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7280"}, svg).textContent = yfmt(t);
    }
    for (const t of ticks(xlo, xhi, Math.min(5, Math.max(1, xhi - xlo)))) {
      el("text", {x: sx(t), y: H - 8, "text-anchor": "middle", "font-size": 11, fill: "#6b7280"}, svg).textContent = Math.round(t);
    }
    return {sx, sy};
  }

  // a titled card that a chart draws into
  function chartBox(title) {
    const box = document.createElement("div");
    box.className = "chart";
    const head = document.createElement("div");
    head.className = "title";
    head.textContent = title;
    box.appendChild(head);
    return box;
  }

  // series: [{name, color, points: [[x, y], ...], dots: bool}]
  function line(title, series, xlabel) {
    const box = chartBox(title);
    const all = series.flatMap(s => s.points);
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title});
    svg.dataset.points = String(all.length);
    box.appendChild(svg);
    if (!all.length) {
      el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#6b7280"}, svg).textContent = "no points yet";
      return box;
    }
    const xs = all.map(p => p[0]), ys = all.map(p => p[1]);
    let ylo = Math.min(...ys), yhi = Math.max(...ys);
    if (ylo === yhi) { ylo -= Math.abs(ylo) * 0.1 || 1; yhi += Math.abs(yhi) * 0.1 || 1; }
    const {sx, sy} = frame(svg, Math.min(...xs), Math.max(...xs), ylo, yhi);
    for (const s of series) {
      if (!s.points.length) continue;
      const d = s.points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      el("path", {d, fill: "none", stroke: s.color, "stroke-width": 2, class: "series", "data-name": s.name}, svg);
      if (s.dots || s.points.length < 3) for (const p of s.points) el("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: s.color}, svg);
    }
    const legend = legendOf(series.map(s => [s.name, s.color, s.points.length]));
    if (xlabel) legend.append(` · x: ${xlabel}`);
    box.appendChild(legend);
    return box;
  }

  // entries: [[name, color, count]] -> the legend under a chart
  function legendOf(entries) {
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const [name, color, count] of entries) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = color;
      item.append(swatch, `${name} (${count})`);
      legend.appendChild(item);
    }
    return legend;
  }

  // groups: [{name, color, values: [numbers]}] -> one histogram with shared bins
  function histogram(title, groups, bins) {
    const box = chartBox(title);
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title});
    box.appendChild(svg);
    const all = groups.flatMap(g => g.values);
    if (!all.length) {
      el("text", {x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#6b7280"}, svg).textContent = "no prepared data";
      return box;
    }
    const lo = Math.min(...all), hi = Math.max(...all) + 1, width = Math.max(1, Math.ceil((hi - lo) / bins));
    const counts = groups.map(g => {
      const c = new Array(bins).fill(0);
      for (const v of g.values) c[Math.min(bins - 1, Math.floor((v - lo) / width))] += 1;
      return c;
    });
    const top = Math.max(...counts.flat());
    const {sy} = frame(svg, lo, lo + width * bins, 0, top, String);  // counts: whole-number ticks
    const inner = (W - PAD.l - PAD.r) / bins;
    counts.forEach((c, gi) => c.forEach((n, bi) => {
      if (!n) return;
      const w = inner / groups.length;
      el("rect", {x: PAD.l + bi * inner + gi * w, y: sy(n), width: Math.max(1, w - 1), height: sy(0) - sy(n),
        fill: groups[gi].color, class: "bar"}, svg);
    }));
    const legend = legendOf(groups.map(g => [g.name, g.color, g.values.length]));
    legend.append(" · x: tokens per example");
    box.appendChild(legend);
    return box;
  }

  return {line, histogram, fmt};
})();
