// The page: model / version / alias pickers from /v1/models, the API key, images in, cards out.

import { enc, get, setApiKey } from "./api.js";
import { showCard } from "./card.js";
import { classify } from "./classify.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
let models = []; // ModelSummary entries of /v1/models

function status(message, isError = false) {
  const node = $("status");
  node.textContent = message;
  node.classList.toggle("error", isError);
  node.setAttribute("role", isError ? "alert" : "status");
}

function option(value, text) {
  return el("option", { value, text });
}

function current() {
  return models.find((m) => m.name === $("model").value);
}

// What a classify request goes to, and which version's card to show.
function target() {
  const model = current();
  if (!model) return null;
  const base = `/v1/models/${enc(model.name)}`;
  const version = $("version").value;
  const alias = $("alias").value;
  if (version) {
    return { path: `${base}/versions/${enc(version)}/classify`, describe: `version ${version}`, version: Number(version) };
  }
  if (alias) {
    return { path: `${base}/labels/${enc(alias)}/classify`, describe: `alias ${alias}`, version: model.aliases[alias] };
  }
  const served = model.served_version ?? model.versions[model.versions.length - 1];
  return { path: `${base}/classify`, describe: "the served version", version: served };
}

function fillVersions() {
  const model = current();
  const versions = model ? [...model.versions].reverse() : [];
  const served = model && model.served_version != null ? ` (v${model.served_version})` : "";
  $("version").replaceChildren(option("", `served${served}`), ...versions.map((v) => option(String(v), `v${v}`)));
  const aliases = model ? Object.entries(model.aliases) : [];
  $("alias").replaceChildren(option("", "none"), ...aliases.map(([a, v]) => option(a, `${a} → v${v}`)));
  $("alias").disabled = aliases.length === 0;
}

function refreshCard() {
  const chosen = target();
  showCard(chosen && current().name, chosen ? chosen.version : null);
}

async function loadModels() {
  status("Loading models…");
  const answer = await get("/v1/models");
  if (!answer.ok) {
    models = [];
    $("model").replaceChildren();
    fillVersions();
    const hint = answer.error.status === 401 ? " Enter the API key above and choose Use key." : "";
    status(`${answer.error.message}.${hint}`, true);
    showCard(null, null);
    return;
  }
  models = answer.data.models;
  const previous = $("model").value;
  $("model").replaceChildren(...models.map((m) => option(m.name, m.name)));
  if (models.some((m) => m.name === previous)) $("model").value = previous;
  fillVersions();
  status(models.length ? `${models.length} model(s) in the store.` : "The store holds no model yet.");
  refreshCard();
}

function classifyAll(items) {
  const chosen = target();
  if (!chosen) {
    status("No model to classify with: load the models first (is the API key right?).", true);
    return;
  }
  const topK = $("top-k").value || "3";
  for (const { blob, name } of items) classify(blob, name, chosen, topK);
}

function imagesOf(fileList) {
  return [...fileList].map((file) => ({ blob: file, name: file.name || "pasted image" }));
}

async function loadSamples() {
  const answer = await get("/samples");
  const samples = answer.ok ? answer.data.samples : [];
  $("samples").hidden = samples.length === 0;
  $("no-samples").hidden = samples.length > 0;
  $("sample-list").replaceChildren(...samples.map((s) => {
    const button = el("button", { type: "button", className: "sample", "data-label": s.label },
      el("img", { src: s.url, alt: "", width: 56, height: 56 }),
      el("span", { text: s.label }));
    button.setAttribute("aria-label", `classify test image ${s.index} (${s.label})`);
    button.addEventListener("click", async () => {
      const image = await get(s.url, true);
      if (image.ok) classifyAll([{ blob: image.data, name: `test image ${s.index} (${s.label})` }]);
    });
    return el("li", {}, button);
  }));
}

function wire() {
  $("choose").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("api-key").value);
    loadModels();
  });
  $("model").addEventListener("change", () => { fillVersions(); refreshCard(); });
  $("version").addEventListener("change", () => {
    if ($("version").value) $("alias").value = "";
    refreshCard();
  });
  $("alias").addEventListener("change", () => {
    if ($("alias").value) $("version").value = "";
    refreshCard();
  });
  $("files").addEventListener("change", () => {
    classifyAll(imagesOf($("files").files));
    $("files").value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    classifyAll(imagesOf(event.dataTransfer.files));
  });
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData ? event.clipboardData.files : [])];
    if (files.length) classifyAll(imagesOf(files));
  });
}

wire();
loadModels();
loadSamples();
