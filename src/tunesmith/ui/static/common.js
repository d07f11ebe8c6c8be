// What every view uses: DOM building, number formatting, the API client with its key, tables, polling.
"use strict";
const MODELS = ["base", "few_shot", "tuned"];
const LABEL = {base: "base", few_shot: "few-shot", tuned: "tuned"};
const view = document.getElementById("view");
let timer = null;  // the live view's polling timer
let routeId = 0;  // bumped on every navigation: a slow reply for an older view must not draw over the new one

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

function fail(err) {
  if (err instanceof ApiError || err instanceof TypeError) view.append(errorBox(err));
  else throw err;
}
