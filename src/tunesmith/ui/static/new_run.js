// Start a run: a form generated from the config model (GET /api/form), launched by POST /api/launch.
"use strict";

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
