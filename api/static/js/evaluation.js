// `Evaluate`: its options, the `Evaluation` table (a row per horizon) and the two charts.

import { fmt, icOverTime, quantileReturns } from "./charts.js";

const $ = (id) => document.getElementById(id);

export class EvaluationView {
  constructor() {
    this.job = null;
    this.body = $("evaluation-table").tBodies[0];
    this.horizon = $("chart-horizon");
    this.summary = $("eval-summary");
    this.horizon.addEventListener("change", () => this.draw());
  }

  defaults(first, last) {
    if (!$("eval-end").value) $("eval-end").value = last;
    if (!$("eval-start").value) {
      const d = new Date(`${last}T00:00:00Z`);
      d.setUTCFullYear(d.getUTCFullYear() - 1);
      const start = d.toISOString().slice(0, 10);
      $("eval-start").value = first && start < first ? first : start;
    }
  }

  // The evaluation's own fields, or a sentence saying what is wrong with them.
  options() {
    const horizons = $("eval-horizons").value.split(/[\s,;]+/).filter(Boolean).map(Number);
    if (!horizons.length || horizons.some((h) => !Number.isInteger(h))) {
      return "Horizons: whole numbers of trading days, e.g. 1, 5, 21.";
    }
    const body = {
      start: $("eval-start").value || null,
      end: $("eval-end").value || null,
      every: Number($("eval-every").value || 1),
      horizons,
      quantiles: Number($("eval-quantiles").value || 5),
      neutralize: $("eval-neutralize").value || null,
    };
    const field = $("eval-field").value.trim();
    if (field) body.field = field; // which key of a dict result is the signal
    if (!body.start || !body.end) return "Start and End: choose the dates to evaluate over.";
    return body;
  }

  clear() {
    this.job = null;
    this.body.replaceChildren();
    this.horizon.replaceChildren();
    $("ic-chart").replaceChildren();
    $("quantile-chart").replaceChildren();
    $("download-panel").disabled = true;
    this.summary.textContent = "";
  }

  show(job) {
    this.clear();
    this.job = job;
    const ev = job.evaluation;
    if (!ev) return;
    $("download-panel").disabled = job.status !== "completed";
    this.summary.textContent = `${ev.dates} dates × ${ev.symbols} symbols, ` +
      `coverage ${fmt(ev.coverage * 100, 3)}%` +
      (ev.dates_skipped ? `, ${ev.dates_skipped} dates skipped` : "") +
      (Object.keys(ev.errors_by_type || {}).length ?
        `; errors: ${Object.entries(ev.errors_by_type).map(([k, v]) => `${k} ${v}`).join(", ")}` :
        "");
    const horizons = Object.keys(ev.horizons || {}).sort((a, b) => Number(a) - Number(b));
    const rows = horizons.map((h) => {
      const f = ev.horizons[h];
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = `${h} d`;
      tr.appendChild(th);
      for (const v of [f.ic_mean, f.ic_ir, f.ic_t, f.ic_hit_rate, f.spread_mean, f.turnover_top,
        f.ic_dates]) {
        const td = document.createElement("td");
        td.className = "num";
        td.textContent = v === null || v === undefined ? "" : fmt(v);
        if (v !== null && v !== undefined) td.title = String(v);
        tr.appendChild(td);
      }
      return tr;
    });
    this.body.replaceChildren(...rows);
    for (const h of horizons) {
      const o = document.createElement("option");
      o.value = h;
      o.textContent = `${h} trading days`;
      this.horizon.appendChild(o);
    }
    if (horizons.length) this.draw();
  }

  draw() {
    const ev = this.job && this.job.evaluation;
    const h = this.horizon.value;
    if (!ev || !h) return;
    const f = ev.horizons[h] || {};
    icOverTime($("ic-chart"), (ev.ic_series || {})[h], f.ic_mean);
    quantileReturns($("quantile-chart"), f.quantile_returns);
  }
}
