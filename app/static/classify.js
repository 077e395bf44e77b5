// Classify images one request each: thumbnail, top-k bars, latency, answering version, errors.

import { postImage } from "./api.js";
import { el, percent } from "./dom.js";

const results = () => document.getElementById("results");

function bars(predictions) {
  const list = el("ol", { className: "bars" });
  for (const { label, confidence } of predictions) {
    const fill = el("span", { className: "fill" });
    fill.style.width = percent(confidence, 2); // CSSOM, allowed by the page's CSP
    list.append(
      el(
        "li",
        { className: "bar-row" },
        el("span", { className: "bar-label", text: label }),
        el("span", { className: "bar", "aria-hidden": "true" }, fill),
        el("span", { className: "bar-value", text: percent(confidence) }),
      ),
    );
  }
  return list;
}

// Adds a result entry for `blob` (a File, or a fetched sample) and fills it with the answer.
export async function classify(blob, name, target, topK) {
  const thumbnail = el("img", { className: "thumb", alt: `thumbnail of ${name}` });
  const url = URL.createObjectURL(blob);
  thumbnail.src = url;
  const status = el("p", { className: "meta", text: `classifying with ${target.describe}…` });
  const body = el("div", { className: "result-body" }, el("p", { className: "name", text: name }), status);
  const item = el("li", { className: "result", "aria-busy": "true" }, thumbnail, body);
  results().prepend(item);

  const started = performance.now();
  const answer = await postImage(`${target.path}?top_k=${encodeURIComponent(topK)}`, blob, name);
  const latency = performance.now() - started;
  item.removeAttribute("aria-busy");
  if (!answer.ok) {
    item.classList.add("failed");
    const { status: code, message } = answer.error;
    status.replaceWith(
      el("p", { className: "error", role: "alert", "data-status": code, text: message }),
    );
    return;
  }
  const { version, predictions } = answer.data;
  item.dataset.version = String(version);
  item.dataset.top = predictions[0] ? predictions[0].label : "";
  status.replaceWith(
    el(
      "p",
      { className: "meta" },
      "answered by ",
      el("strong", { className: "version", text: `${answer.data.model} v${version}` }),
      ` in ${Math.round(latency)} ms`,
    ),
    bars(predictions),
  );
}

export function clearResults() {
  for (const img of results().querySelectorAll("img.thumb")) URL.revokeObjectURL(img.src);
  results().replaceChildren();
}
