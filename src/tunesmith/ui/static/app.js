// The dashboard's router: hash routes over the JSON API (/api/*). Model-written text only ever goes in via textContent.
"use strict";

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
