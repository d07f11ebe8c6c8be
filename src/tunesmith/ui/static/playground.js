// The playground: one prompt to the base and the tuned model, both answers streamed (server-sent events over fetch).
"use strict";

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
