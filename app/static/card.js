// A version's model card: its metadata (/v1/models/{m}/versions/{v}) and its evaluation.

import { enc, get } from "./api.js";
import { el, fixed, percent } from "./dom.js";

const FIGURE_TITLES = {
  "confusion_matrix.png": "Confusion matrix (test split)",
  "learning_curves.png": "Learning curves",
  "reliability.png": "Reliability diagram, before and after calibration",
};
let shown = 0; // the latest card asked for; older answers are dropped
let figureUrls = [];

function row(term, value, id) {
  return [el("dt", { text: term }), el("dd", { id, text: value })];
}

function summary(detail, report) {
  const m = detail.test_metrics;
  const ece = m.ece_before_calibration == null
    ? fixed(m.ece)
    : `${fixed(m.ece_before_calibration)} → ${fixed(m.ece)}`;
  const train = detail.training;
  const data = detail.dataset || {};
  const splits = Object.entries(data.splits || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  return el(
    "dl",
    { className: "summary" },
    ...row("Test accuracy", percent(m.accuracy), "card-accuracy"),
    ...row("Macro precision / recall / F1",
      `${fixed(m.macro_precision)} / ${fixed(m.macro_recall)} / ${fixed(m.macro_f1)}`),
    ...row("ECE before → after calibration", ece, "card-ece"),
    ...row("Temperature", fixed(m.temperature)),
    ...row("Test examples", report ? String(report.num_examples) : "–"),
    ...row("Training", `${train.profile}: ${train.epochs_run} epoch${train.epochs_run === 1 ? "" : "s"}, ${fixed(train.seconds, 1)} s`),
    ...row("Data set", data.name ? `${data.name} (${splits})` : "–"),
    ...row("Aliases", detail.aliases.join(", ") || "none"),
  );
}

function perClass(report) {
  const perClassMetrics = report.metrics && report.metrics.per_class;
  if (!perClassMetrics) return null;
  const head = el("tr", {}, ...["Class", "Precision", "Recall", "F1", "Support"].map(
    (h) => el("th", { scope: "col", text: h })));
  const rows = Object.entries(perClassMetrics).map(([name, c]) => el("tr", {},
    el("th", { scope: "row", text: name }),
    el("td", { text: fixed(c.precision) }),
    el("td", { text: fixed(c.recall) }),
    el("td", { text: fixed(c.f1) }),
    el("td", { text: String(c.support) })));
  return el("div", { className: "table-wrap", tabindex: "0", role: "region", "aria-label": "per-class scores" },
    el("table", { className: "per-class" },
      el("caption", { text: "Per class, on the test split" }),
      el("thead", {}, head), el("tbody", {}, ...rows)));
}

async function figure(base, file, token) {
  const answer = await get(`${base}/evaluation/${enc(file)}`, true);
  if (token !== shown) return null;
  const title = FIGURE_TITLES[file] || file;
  if (!answer.ok) return el("p", { className: "error", text: answer.error.message });
  const url = URL.createObjectURL(answer.data);
  figureUrls.push(url);
  return el("figure", {}, el("img", { src: url, alt: title, className: "plot" }),
    el("figcaption", { text: title }));
}

// Shows the card of `version` of `model` in #card (replacing what was there).
export async function showCard(model, version) {
  const card = document.getElementById("card");
  const token = ++shown;
  for (const url of figureUrls) URL.revokeObjectURL(url);
  figureUrls = [];
  if (!model || version == null) {
    card.replaceChildren(el("p", { className: "note", text: "No version to describe." }));
    return;
  }
  card.setAttribute("aria-busy", "true");
  const base = `/v1/models/${enc(model)}/versions/${enc(version)}`;
  const [detail, evaluation] = await Promise.all([get(base), get(`${base}/evaluation`)]);
  if (token !== shown) return;
  card.removeAttribute("aria-busy");
  if (!detail.ok) {
    card.replaceChildren(el("p", { className: "error", role: "alert", text: detail.error.message }));
    return;
  }
  const report = evaluation.ok ? evaluation.data : null;
  const parts = [
    el("h3", { id: "card-heading", text: `${model} version ${version}` }),
    summary(detail.data, report),
  ];
  if (!report) {
    parts.push(el("p", { className: "note", text: `No evaluation: ${evaluation.error.message}` }));
    card.replaceChildren(...parts);
    return;
  }
  parts.push(perClass(report));
  const figures = el("div", { className: "figures" });
  parts.push(figures);
  card.replaceChildren(...parts.filter(Boolean));
  for (const file of report.figures || []) {
    const node = await figure(base, file, token);
    if (token !== shown) return;
    if (node) figures.append(node);
  }
  card.dataset.loaded = `${model}/${version}`;
}
