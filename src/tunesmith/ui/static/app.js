// The dashboard: hash routes over the JSON API (/api/*). Everything model-written goes in via textContent.
"use strict";
const MODELS = ["base", "few_shot", "tuned"];
const LABEL = {base: "base", few_shot: "few-shot", tuned: "tuned"};
const view = document.getElementById("view");
let timer = null;  // the live view's polling timer
let routeId = 0;  // bumped on every navigation: a slow reply for an older view must not draw over the new one

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function num(v, digits = 3) {
  if (v === null || v === undefined || v === "") return "–";
  if (typeof v !== "number") return String(v);
  if (Math.abs(v) >= 1e6) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(digits);
}

function shortPath(path) {  // the last two parts of a path; hub ids and model names stay whole
  if (!path) return "–";
  const parts = String(path).split("/").filter(Boolean);
  return String(path).startsWith("/") && parts.length > 2 ? `…/${parts.slice(-2).join("/")}` : String(path);
}

function headers(extra) {
  const key = localStorage.getItem("tunesmith-key");
  return Object.assign(key ? {Authorization: `Bearer ${key}`} : {}, extra || {});
}

class ApiError extends Error {}

async function api(path, options) {
  const response = await fetch(path, Object.assign({}, options, {headers: headers(options && options.headers)}));
  if (response.status === 401) {
    document.getElementById("auth").hidden = false;
    throw new ApiError("this dashboard needs its API key (enter it above)");
  }
  const body = await response.json();
  if (!response.ok) throw new ApiError(body.error || `HTTP ${response.status}`);
  return body;
}

function poll(refresh, ms) {  // one refresh timer at a time, dropped when the user navigates away
  clearTimeout(timer);
  const id = routeId;
  timer = setTimeout(() => { if (id === routeId) refresh().catch(fail); }, ms);
}

function errorBox(err) { return h("div", {class: "error"}, String(err.message || err)); }

function table(head, rows, opts) {
  const thead = h("thead", {}, h("tr", {}, head.map(c => h("th", {class: c.num ? "num" : ""}, c.label || c))));
  return h("div", {class: "scroll"}, h("table", opts || {}, thead, h("tbody", {}, rows)));
}

document.getElementById("auth-save").addEventListener("click", () => {
  localStorage.setItem("tunesmith-key", document.getElementById("auth-key").value);
  document.getElementById("auth").hidden = true;
  route();
});

// ------------------------------------------------------------------ runs table

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

// ------------------------------------------------------------------ two runs side by side

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

// ------------------------------------------------------------------ one run

const TABS = [["train", "Training"], ["data", "Data"], ["compare", "Compare"], ["play", "Playground"]];

async function showRun(name, tab) {
  const q = encodeURIComponent(name);
  const tabs = h("div", {class: "tabs"}, TABS.map(([key, label]) =>
    h("a", {href: `#/run/${q}/${key}`, class: key === tab ? "active" : ""}, label)));
  const body = h("div", {id: `tab-${tab}`});
  view.replaceChildren(h("h1", {}, name), tabs, body);
  await ({train: showTraining, data: showData, compare: showCompare, play: showPlayground})[tab](name, body);
}

async function showTraining(name, body) {
  const records = [];
  let since = 0;
  const id = routeId;
  const tick = async () => {
    const data = await api(`/api/training?run=${encodeURIComponent(name)}&since=${since}`);
    if (id !== routeId) return;
    records.push(...data.records);
    since = data.next;
    renderTraining(body, records, data);
    if (data.summary.status === "running") poll(tick, 1000);
  };
  await tick();
}

function renderTraining(body, records, data) {
  const s = data.summary, info = data.info || {};
  const train = records.filter(r => typeof r.loss === "number");
  const evals = records.filter(r => typeof r.eval_loss === "number");
  const last = train[train.length - 1] || {};
  const planned = data.planned_steps;
  let eta = "–";
  if (s.status === "running" && last.tokens_per_s && last.tokens_seen && planned && last.step) {
    const seconds = (planned - last.step) * (last.tokens_seen / last.step) / last.tokens_per_s;
    eta = seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
  }
  const card = (label, value, id) => h("div", {class: "card", id}, h("div", {class: "label"}, label), h("div", {class: "value"}, value));
  const parts = [
    h("div", {class: "cards"},
      card("status", h("span", {class: `badge ${s.status.replace(" ", "-")}`}, s.status), "card-status"),
      card("step", planned ? `${last.step || 0} / ${planned}` : num(last.step || 0), "card-step"),
      card("loss", num(last.loss)), card("tokens/s", num(last.tokens_per_s, 1)), card("ETA", eta),
      card("best eval loss", num(s.best_eval_loss))),
    h("div", {class: "charts"},
      Charts.line("loss", [{name: "train", color: "#2f6fde", points: train.map(r => [r.step, r.loss])},
        {name: "eval", color: "#d9822b", points: evals.map(r => [r.step, r.eval_loss]), dots: true}], "step"),
      Charts.line("learning rate", [{name: "lr", color: "#1f8a4c",
        points: train.filter(r => typeof r.lr === "number").map(r => [r.step, r.lr])}], "step")),
  ];
  parts[1].id = "train-charts";
  if (info.estimate || info.measured) {
    const est = info.estimate || {}, meas = info.measured || {};
    const both = k => (k in est) && (k in meas) ? 0 : 1;  // figures measured against their estimate first
    const keys = [...new Set([...Object.keys(est), ...Object.keys(meas)])]
      .filter(k => typeof (est[k] ?? meas[k]) !== "object").sort((a, b) => both(a) - both(b));
    parts.push(h("h2", {}, "Estimate vs measured"), table(["", {label: "estimated", num: true}, {label: "measured", num: true}],
      keys.map(k => h("tr", {}, h("td", {}, k), h("td", {class: "num"}, num(est[k])), h("td", {class: "num"}, num(meas[k]))))));
  }
  const log = data.output ? h("pre", {class: "log", id: "run-output"}, data.output) : null;
  if (log) parts.push(h("h2", {}, "Output"), log);
  body.replaceChildren(...parts);
  if (log) log.scrollTop = log.scrollHeight;  // the latest lines
}

async function showData(name, body) {
  const q = encodeURIComponent(name);
  const data = await api(`/api/data?run=${q}`);
  const report = data.report;
  if (!report) { body.replaceChildren(h("p", {class: "muted"}, "No data report yet: the data has not been prepared.")); return; }
  const lengths = data.lengths || {};
  const facts = [["rows loaded", report.rows_loaded], ["rows rejected", report.rows_rejected], ["format", report.format],
    ["template", report.template], ["train examples", report.train_examples], ["test examples", report.test_examples],
    ["trained token share", report.trained_token_fraction]].filter(([, v]) => v !== undefined && v !== null);
  const checks = Object.entries(report.checks || {}).map(([key, c]) => h("tr", {},
    h("td", {}, h("span", {class: `badge ${c.status}`}, c.status)), h("td", {}, key), h("td", {}, c.message || "")));
  const examples = h("div", {id: "examples"});
  body.replaceChildren(
    h("div", {class: "cards"}, facts.map(([k, v]) => h("div", {class: "card"}, h("div", {class: "label"}, k), h("div", {class: "value"}, num(v))))),
    h("div", {class: "charts"}, Charts.histogram("token length per example", [
      {name: "train", color: "#2f6fde", values: lengths.train || []}, {name: "test", color: "#d9822b", values: lengths.test || []}], 20)),
    h("h2", {}, "Checks"), checks.length ? table(["", "check", "result"], checks, {id: "checks"}) : h("p", {class: "muted"}, "no checks recorded"),
    h("h2", {}, "Examples as the model sees them"), examples);
  await browseExamples(name, examples, "train", 0);
}

async function browseExamples(name, box, split, offset) {
  const data = await api(`/api/examples?run=${encodeURIComponent(name)}&split=${split}&offset=${offset}`);
  const pick = h("select", {"aria-label": "split", onchange: e => browseExamples(name, box, e.target.value, 0).catch(fail)},
    ["train", "test"].map(s => h("option", {value: s, selected: s === split}, s)));
  const prev = h("button", {class: "secondary", disabled: offset === 0,
    onclick: () => browseExamples(name, box, split, Math.max(0, offset - 10)).catch(fail)}, "‹ previous");
  const next = h("button", {class: "secondary", disabled: offset + data.examples.length >= data.total,
    onclick: () => browseExamples(name, box, split, offset + 10).catch(fail)}, "next ›");
  const legend = h("span", {class: "tokens"}, h("span", {class: "masked"}, "masked (prompt, not trained)"), " ",
    h("span", {class: "trained"}, "trained (response)"), " ", h("span", {class: "boundary"}), " boundary");
  box.replaceChildren(h("div", {class: "toolbar"}, pick, prev, next,
    h("span", {class: "muted"}, `${offset + 1}–${offset + data.examples.length} of ${data.total}`), legend),
    ...data.examples.map(ex => h("div", {class: "example"},
      h("div", {class: "muted"}, `#${ex.index + 1} · ${ex.source}`),
      h("div", {class: "tokens"}, ex.spans.flatMap((sp, i) => [i ? h("span", {class: "boundary", title: "prompt/response boundary"}) : null,
        h("span", {class: sp.trained ? "trained" : "masked", title: `${sp.tokens} tokens`}, sp.text)])))));
}

async function showCompare(name, body) {
  const data = await api(`/api/compare?run=${encodeURIComponent(name)}`);
  if (!data.metrics) { body.replaceChildren(h("p", {class: "muted"}, "Not evaluated yet: run `tunesmith compare` on this run.")); return; }
  const models = Object.keys(data.metrics).filter(k => data.metrics[k] && typeof data.metrics[k] === "object" && "n" in data.metrics[k]);
  const extra = Object.keys(data.metrics).filter(k => !models.includes(k));
  const keys = [...new Set(models.flatMap(m => Object.keys(flatNumbers(data.metrics[m]))))];
  const three = table(["metric", ...models.map(m => ({label: LABEL[m] || m, num: true}))],
    keys.map(k => h("tr", {}, h("td", {}, k), models.map(m => h("td", {class: "num"}, num(flatNumbers(data.metrics[m])[k]))))),
    {id: "three-way"});
  const parts = [h("p", {class: "muted"}, `task: ${data.task_type}`), three];
  if (data.changes) parts.push(h("p", {id: "changes"}, `tuned vs base, per example: ${data.changes.better} better, ${data.changes.worse} worse, ${data.changes.same} unchanged`));
  const other = Object.assign({}, ...extra.map(k => ({[k]: data.metrics[k]})), data.other || {});
  for (const [key, value] of Object.entries(other)) parts.push(h("h2", {}, key.replace(/_/g, " ")),
    typeof value === "object" && value && !Array.isArray(value) && Object.values(value).every(v => typeof v !== "object")
      ? table(["", {label: "value", num: true}], Object.entries(value).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {class: "num"}, num(v)))))
      : h("pre", {class: "log"}, JSON.stringify(value, null, 2)));
  if (data.template_check) parts.push(h("p", {}, "template check: ", h("span", {class: `badge ${data.template_check.status}`}, data.template_check.status), " ", data.template_check.message));
  const form = await api("/api/form").catch(() => ({}));
  if (form.pairs) {
    const out = h("pre", {class: "log", hidden: true});
    parts.push(h("div", {class: "toolbar"}, h("button", {onclick: async e => {
      e.target.disabled = true;
      try {
        const r = await api("/api/pairs", {method: "POST", body: JSON.stringify({run: name}), headers: {"Content-Type": "application/json"}});
        out.textContent = r.output; out.hidden = false;
      } catch (err) { out.textContent = String(err.message); out.hidden = false; }
      e.target.disabled = false;
    }}, "Iterate: make preference pairs from the failures")), out);
  }
  const tag = h("select", {id: "tag-filter", "aria-label": "error tag"}, h("option", {value: ""}, "any tag"), data.tags.map(t => h("option", {value: t}, t)));
  const who = h("select", {id: "tag-model", "aria-label": "tagged model"}, h("option", {value: ""}, "any model"), models.map(m => h("option", {value: m}, LABEL[m] || m)));
  const worse = h("input", {type: "checkbox", id: "worse-filter"});
  const list = h("div", {id: "examples-compare"});
  const count = h("span", {class: "muted", id: "shown-count"});
  const render = () => {
    const rows = data.rows.filter(r => (!worse.checked || (r.tuned_change !== null && r.tuned_change < -1e-9)) &&
      (!tag.value || (who.value ? [who.value] : models).some(m => ((r[m] || {}).tags || []).includes(tag.value))));
    count.textContent = `${rows.length} of ${data.rows.length} examples`;
    list.replaceChildren(...rows.slice(0, 200).map(r => h("div", {class: `example ${r.tuned_change < -1e-9 ? "worse" : ""}`, "data-index": r.index},
      h("div", {class: "muted"}, `#${r.index + 1} · ${r.source || ""}${r.tuned_change === null || r.tuned_change === undefined ? "" : ` · tuned vs base ${r.tuned_change > 0 ? "+" : ""}${num(r.tuned_change, 2)}`}`),
      h("div", {class: "answer"}, h("b", {}, "Q: "), r.question || r.prompt || ""),
      h("div", {class: "side"},
        h("div", {}, h("div", {class: "who"}, "reference"), h("div", {class: "answer"}, r.reference || "")),
        models.map(m => h("div", {"data-model": m}, h("div", {class: "who"}, `${LABEL[m] || m}`,
          ((r[m] || {}).scores || {}).token_f1 !== undefined ? ` · F1 ${num(r[m].scores.token_f1, 2)}` : ""),
          h("div", {class: "answer"}, (r[m] || {}).prediction ?? "–"),
          h("div", {}, ((r[m] || {}).tags || []).map(t => h("span", {class: "tag"}, t)))))))));
  };
  for (const input of [tag, who, worse]) input.addEventListener("change", render);
  parts.push(h("h2", {}, "Per example"), h("div", {class: "toolbar"}, tag, who,
    h("label", {}, worse, " tuned got worse"), count), list);
  body.replaceChildren(...parts);
  render();
}

async function showPlayground(name, body) {
  const prompt = h("textarea", {id: "prompt", rows: 3, placeholder: "Ask both models the same thing…"});
  const setting = (label, id, value, attrs) => h("label", {}, `${label} `, h("input", Object.assign({id, value, size: 6}, attrs || {})));
  const settings = h("div", {class: "toolbar"},
    setting("temperature", "temperature", "0", {type: "number", step: "0.1", min: "0"}),
    setting("top p", "top_p", "1", {type: "number", step: "0.05", min: "0.05", max: "1"}),
    setting("max new tokens", "max_new_tokens", "128", {type: "number", min: "1"}),
    setting("system", "system", "", {size: 20}));
  const panes = Object.fromEntries(["base", "tuned"].map(side => [side, h("div", {class: "answer", id: `answer-${side}`})]));
  const send = h("button", {id: "send"}, "Send to both");
  send.addEventListener("click", async () => {
    send.disabled = true;
    const value = id => document.getElementById(id).value;
    const body = {temperature: Number(value("temperature")), top_p: Number(value("top_p")),
      max_new_tokens: Number(value("max_new_tokens")), system: value("system") || null};
    await Promise.all(["base", "tuned"].map(side => stream(name, side, prompt.value, body, panes[side])));
    send.disabled = false;
  });
  body.replaceChildren(prompt, settings, h("div", {class: "toolbar"}, send),
    h("div", {class: "play"}, ["base", "tuned"].map(side => h("div", {class: "pane"}, h("div", {class: "who muted"}, side), panes[side]))));
}

async function stream(run, side, prompt, settings, pane) {
  pane.textContent = "";
  pane.dataset.state = "streaming";
  pane.dataset.events = "0";
  try {
    const response = await fetch("/api/playground", {method: "POST",
      headers: headers({"Content-Type": "application/json"}), body: JSON.stringify({run, model: side, prompt, settings})});
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      if (response.status === 401) document.getElementById("auth").hidden = false;
      throw new ApiError(body.error || `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data: ")) continue;
        const event = JSON.parse(line.slice(6));
        if (event.delta) { pane.textContent += event.delta; pane.dataset.events = String(Number(pane.dataset.events) + 1); }
        if (event.error) throw new ApiError(event.error);
      }
    }
    pane.dataset.state = "done";
  } catch (err) {
    pane.dataset.state = "error";
    pane.replaceChildren(errorBox(err));
  }
}

// ------------------------------------------------------------------ start a run

const MAIN_FIELDS = ["model", "data.path", "data.template", "train.method", "train.epochs", "train.max_steps", "train.learning_rate"];

async function showNew() {
  const id = routeId;
  const data = await api("/api/form");
  if (id !== routeId) return;
  const name = h("input", {id: "run-name", value: `run-${new Date().toISOString().slice(0, 16).replace(/[-:T]/g, "")}`});
  const inputs = {};
  const fieldRow = f => {
    let input;
    if (f.kind === "bool" || f.kind === "choice") {
      const options = f.kind === "bool" ? [true, false] : f.choices;
      input = h("select", {}, options.map(o => h("option", {value: String(o), selected: String(o) === String(f.default)}, String(o))));
    } else {
      const shown = f.default === null ? "" : typeof f.default === "object" ? JSON.stringify(f.default) : String(f.default);
      input = h("input", {value: shown, type: f.kind === "int" || f.kind === "float" ? "text" : "text", inputmode: f.kind === "int" ? "numeric" : null,
        list: {"data.path": "data-files", model: "model-names"}[f.key] || null});
    }
    input.id = `field-${f.key}`;
    input.name = f.key;
    input.dataset.initial = input.value;
    inputs[f.key] = input;
    return h("div", {class: "field"}, h("label", {for: input.id}, f.key), input, h("div", {class: "help"}, f.description));
  };
  const main = data.fields.filter(f => MAIN_FIELDS.includes(f.key)).sort((a, b) => MAIN_FIELDS.indexOf(a.key) - MAIN_FIELDS.indexOf(b.key));
  const sections = {};
  for (const f of data.fields.filter(f => !MAIN_FIELDS.includes(f.key))) (sections[f.section] = sections[f.section] || []).push(f);
  const result = h("div", {id: "launch-result"});
  const launch = h("button", {id: "launch"}, "Start the run");
  launch.addEventListener("click", async () => {
    const values = {};
    for (const [key, input] of Object.entries(inputs)) if (input.value !== input.dataset.initial) values[key] = input.value === "" ? "null" : input.value;
    launch.disabled = true;
    result.replaceChildren();
    try {
      await api("/api/launch", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: name.value, values})});
      location.hash = `#/run/${encodeURIComponent(name.value)}/train`;
    } catch (err) {
      result.replaceChildren(errorBox(err));
    } finally {
      launch.disabled = false;
    }
  });
  view.replaceChildren(h("h1", {}, "Start a run"),
    h("p", {class: "muted"}, `Runs prepare the data, train, compare base / few-shot / tuned and write the report, into ${data.runs_dir}/NAME. Only the fields you change are passed, as --set KEY=VALUE.`),
    h("datalist", {id: "data-files"}, data.data_files.map(f => h("option", {value: f}))),
    h("datalist", {id: "model-names"}, (data.models || []).map(m => h("option", {value: m}))),
    h("div", {class: "form-section"}, h("div", {class: "field"}, h("label", {for: "run-name"}, "name"), name), main.map(fieldRow)),
    ...Object.entries(sections).map(([section, fields]) => h("details", {class: "form-section"}, h("summary", {}, `${section} settings`), fields.map(fieldRow))),
    h("div", {class: "toolbar"}, launch), result);
}

// ------------------------------------------------------------------ routing

function fail(err) {
  if (err instanceof ApiError || err instanceof TypeError) view.append(errorBox(err));
  else throw err;
}

async function route() {
  clearTimeout(timer);
  routeId += 1;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  try {
    if (parts[0] === "run" && parts[1]) await showRun(parts[1], TABS.some(([k]) => k === parts[2]) ? parts[2] : "train");
    else if (parts[0] === "diff" && parts[2]) await showDiff(parts[1], parts[2]);
    else if (parts[0] === "new") await showNew();
    else await showRuns();
  } catch (err) {
    fail(err);
  }
}

window.addEventListener("hashchange", route);
route();
