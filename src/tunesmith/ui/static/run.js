// One run: its tabs, live training, the data and its examples, the comparison.
"use strict";

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
