// The runs table, and two runs side by side (config diff, metrics).
"use strict";

const RUN_COLUMNS = [
  {key: "name", label: "run"}, {key: "model", label: "model", wide: true}, {key: "method", label: "method", wide: true},
  {key: "data", label: "data", wide: true}, {key: "status", label: "status"}, {key: "steps", label: "steps", num: true},
  {key: "best_eval_loss", label: "best eval loss", num: true},
  ...MODELS.map(m => ({key: `m:${m}`, label: `${LABEL[m]} EM / F1`, num: true})),
];
let sortBy = {key: "updated", asc: false};

function sortValue(run, key) {
  if (key.startsWith("m:")) {
    const m = (run.metrics || {})[key.slice(2)] || {};
    return m.token_f1 ?? m.exact_match ?? m.rouge_l ?? null;
  }
  return run[key];
}

async function showRuns() {
  const id = routeId;
  const data = await api("/api/runs");
  if (id !== routeId) return;
  const chosen = new Set();
  const compareButton = h("button", {id: "compare-two", disabled: true, onclick: () => {
    const [a, b] = [...chosen];
    location.hash = `#/diff/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  }}, "Compare the two selected runs");
  const tbody = h("tbody");
  const head = h("tr", {}, h("th", {}, ""), RUN_COLUMNS.map(c => h("th", {
    class: `sortable ${c.num ? "num" : ""} ${c.wide ? "hide-phone" : ""} ${sortBy.key === c.key ? "sorted" + (sortBy.asc ? " asc" : "") : ""}`,
    "data-key": c.key,
    onclick: () => { sortBy = {key: c.key, asc: sortBy.key === c.key ? !sortBy.asc : !c.num}; showRuns().catch(fail); },
  }, c.label)));
  const runs = [...data.runs].sort((a, b) => {
    const x = sortValue(a, sortBy.key), y = sortValue(b, sortBy.key);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * (sortBy.asc ? 1 : -1);
  });
  for (const run of runs) {
    const box = h("input", {type: "checkbox", "aria-label": `select ${run.name}`, onchange: e => {
      e.target.checked ? chosen.add(run.name) : chosen.delete(run.name);
      compareButton.disabled = chosen.size !== 2;
    }});
    const steps = run.planned_steps && run.status === "running" ? `${run.steps} / ${run.planned_steps}` : run.steps;
    tbody.append(h("tr", {"data-run": run.name},
      h("td", {}, box),
      h("td", {}, h("a", {href: `#/run/${encodeURIComponent(run.name)}/train`}, run.name)),
      h("td", {class: "hide-phone path", title: run.model || ""}, shortPath(run.model)),
      h("td", {class: "hide-phone"}, run.method || "–"),
      h("td", {class: "hide-phone path", title: run.data || ""}, shortPath(run.data)),
      h("td", {}, h("span", {class: `badge ${run.status.replace(" ", "-")}`}, run.status)),
      h("td", {class: "num"}, num(steps)), h("td", {class: "num"}, num(run.best_eval_loss)),
      MODELS.map(m => {
        const v = (run.metrics || {})[m];
        return h("td", {class: "num"}, v ? `${num(v.exact_match, 2)} / ${num(v.token_f1, 2)}` : "–");
      })));
  }
  view.replaceChildren(
    h("h1", {}, "Runs"), h("p", {class: "muted"}, `${data.runs.length} runs in ${data.runs_dir}`),
    h("div", {class: "scroll"}, h("table", {id: "runs"}, h("thead", {}, head), tbody)),
    h("div", {class: "toolbar"}, compareButton, h("a", {href: "#/new"}, "Start a run")));
  if (data.runs.some(r => r.status === "running")) poll(() => showRuns(), 3000);
}

function metricsTable(runs) {  // runs: [[label, metrics.json]] -> one row per metric, a column per run x model
  const columns = runs.flatMap(([label, m]) => Object.keys(m || {}).filter(k => m[k] && typeof m[k] === "object")
    .map(model => ({label: `${label} · ${LABEL[model] || model}`, values: flatNumbers(m[model]), num: true})));
  const keys = [...new Set(columns.flatMap(c => Object.keys(c.values)))];
  const rows = keys.map(k => h("tr", {}, h("td", {}, k), columns.map(c => h("td", {class: "num"}, num(c.values[k])))));
  return table(["metric", ...columns], rows, {id: "metrics-side"});
}

function flatNumbers(obj, prefix = "") {
  const out = {};
  for (const [k, v] of Object.entries(obj || {})) {
    if (typeof v === "number") out[prefix + k] = v;
    else if (v && typeof v === "object" && !Array.isArray(v)) Object.assign(out, flatNumbers(v, `${prefix}${k}.`));
  }
  return out;
}

async function showDiff(a, b) {
  const id = routeId;
  const data = await api(`/api/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  if (id !== routeId) return;
  const rows = data.config.map(d => h("tr", {}, h("td", {}, d.key),
    h("td", {class: "diffval"}, JSON.stringify(d.a)), h("td", {class: "diffval"}, JSON.stringify(d.b))));
  const facts = [["status", r => r.status], ["model", r => r.model], ["method", r => r.method], ["data", r => r.data],
    ["steps", r => num(r.steps)], ["best eval loss", r => num(r.best_eval_loss)]];
  view.replaceChildren(h("h1", {}, `${a} vs ${b}`),
    table(["", a, b], facts.map(([label, get]) => h("tr", {}, h("td", {}, label), h("td", {}, get(data.a) ?? "–"),
      h("td", {}, get(data.b) ?? "–")))),
    h("h2", {}, "Config: what differs"), table(["key", a, b], rows, {id: "config-diff"}),
    h("h2", {}, "Metrics side by side"), metricsTable([[a, data.metrics.a], [b, data.metrics.b]]));
}
