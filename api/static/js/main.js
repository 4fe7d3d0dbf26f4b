// The page's wiring: universe, run, save, saved scripts, recent jobs, evaluate.

import { bindTokenField, call, describe, download } from "./api.js";
import { createEditor } from "./editor.js";
import { EvaluationView } from "./evaluation.js";
import { JobRunner } from "./jobs.js";
import { ResultsTable } from "./results.js";
import { SavedScripts } from "./saved.js";

const $ = (id) => document.getElementById(id);

const notice = {
  el: $("notice"),
  show(text, kind = "error") {
    this.el.textContent = text;
    this.el.className = kind === "error" ? "notice" : "notice info";
    this.el.hidden = false;
  },
  clear() { this.el.hidden = true; this.el.textContent = ""; },
};

function fail(err, doing) { notice.show(describe(err, doing)); }

bindTokenField();
const editor = createEditor($("editor"));
const results = new ResultsTable(editor);
const evaluation = new EvaluationView();
let lastJob = null;

export function parseSymbols() {
  return $("symbols").value.split(/[\s,;]+/).map((s) => s.trim().toUpperCase()).filter(Boolean);
}

function parseParams() {
  const field = $("params"), problem = $("params-problem");
  const text = field.value.trim() || "{}";
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    value = undefined;
    problem.textContent = `Params is not valid JSON: ${err.message}`;
  }
  if (value !== undefined && (value === null || typeof value !== "object" || Array.isArray(value))) {
    value = undefined;
    problem.textContent = "Params must be a JSON object, e.g. {\"window\": 20}";
  }
  field.setAttribute("aria-invalid", String(value === undefined));
  if (value === undefined) {
    notice.show(problem.textContent);
    field.focus();
    return undefined;
  }
  problem.textContent = "";
  return value;
}

// The common part of /execute and /evaluate: what to run, on what, with which params.
function baseBody() {
  const params = parseParams();
  if (params === undefined) return null;
  const symbols = parseSymbols();
  if (!symbols.length) {
    notice.show("Symbols: enter at least one symbol, or choose a universe.");
    $("symbols").focus();
    return null;
  }
  const body = { symbols, params, lookback: Number($("lookback").value || 252) };
  const open = saved.current;
  if (open && open.code === editor.code) body.script_id = open.id;
  else body.script = editor.code;
  return body;
}

const runner = new JobRunner({
  onFinished(job, kind) {
    setBusy(false);
    lastJob = job;
    if (kind === "evaluation" || job.kind === "evaluation") {
      evaluation.show(job);
      if (job.status !== "completed") notice.show(statusText(job), "info");
    } else {
      results.show(job);
      $("download-csv").disabled = !["completed", "timed_out", "cancelled"].includes(job.status);
      if (job.status !== "completed") notice.show(statusText(job), "info");
    }
    saved.refreshJobs();
  },
  onError(err, doing) { setBusy(false); fail(err, doing); },
  onProgress(job) { if (job.kind !== "evaluation" && job.results) results.show(job); },
});

function statusText(job) {
  const base = { failed: "The job failed", timed_out: "The job hit its time limit",
    cancelled: "The job was cancelled" }[job.status] || `The job is ${job.status}`;
  return job.error ? `${base}: ${job.error.type}: ${job.error.message}` : `${base}.`;
}

function setBusy(busy) {
  for (const id of ["run", "evaluate"]) $(id).disabled = busy;
}

async function submit(path, body, kind) {
  notice.clear();
  setBusy(true);
  try {
    await runner.submit(path, body, kind, () => {
      // Accepted: what was shown before gives way to this job's results.
      if (kind === "evaluation") evaluation.clear();
      else { results.clear(); $("download-csv").disabled = true; }
    });
  } catch (err) {
    setBusy(false);
    if (err.status === 400 && err.details && err.details.line) editor.mark(err);
    fail(err, kind === "evaluation" ? "Evaluate" : "Run");
  }
}

$("validate").addEventListener("click", async () => {
  notice.clear();
  await editor.validate();
});

$("run").addEventListener("click", () => {
  const body = baseBody();
  if (!body) return;
  const asOf = $("as-of").value;
  if (asOf) body.as_of = asOf;
  submit("/execute", body, "execute");
});

$("evaluate").addEventListener("click", () => {
  const body = baseBody();
  if (!body) return;
  const extra = evaluation.options();
  if (typeof extra === "string") { notice.show(extra); return; }
  submit("/evaluate", { ...body, ...extra }, "evaluation");
});

$("download-csv").addEventListener("click", async () => {
  if (!lastJob) return;
  try {
    await download(`/jobs/${lastJob.job_id}/results.csv`, `results-${lastJob.job_id}.csv`);
  } catch (err) { fail(err, "Download CSV"); }
});

$("download-panel").addEventListener("click", async () => {
  if (!evaluation.job) return;
  const id = evaluation.job.job_id;
  try {
    await download(`/jobs/${id}/panel.csv`, `panel-${id}.csv`);
  } catch (err) { fail(err, "Download panel CSV"); }
});

const saved = new SavedScripts({
  editor,
  notice,
  fail,
  symbols: parseSymbols,
  params: parseParams,
  lookback: () => Number($("lookback").value || 252),
  showRun(run) { lastJob = null; $("download-csv").disabled = true; results.show(run); },
  openJob(job) {
    lastJob = job;
    if (job.kind === "evaluation" || job.evaluation) evaluation.show(job);
    else {
      results.show(job);
      $("download-csv").disabled = !["completed", "timed_out", "cancelled"].includes(job.status);
    }
  },
  follow(job) { setBusy(true); runner.follow(job, job.kind === "evaluation" ? "evaluation" : "execute"); },
});

async function loadUniverse() {
  let u;
  try {
    u = await call("GET", "/universe");
  } catch (err) {
    if (err.status === 401) { fail(err, "Loading the universe"); }
    return;
  }
  const select = $("universe-choice");
  select.replaceChildren(select.options[0]);
  const all = document.createElement("option");
  all.value = "all";
  all.textContent = `All symbols (${u.symbols.length})`;
  select.appendChild(all);
  for (const sector of u.sectors) {
    const o = document.createElement("option");
    o.value = `sector:${sector}`;
    const n = u.symbols.filter((s) => s.sector === sector).length;
    o.textContent = `Sector: ${sector} (${n})`;
    select.appendChild(o);
  }
  select.onchange = () => {
    const v = select.value;
    if (!v) return;
    const chosen = v === "all" ? u.symbols :
      u.symbols.filter((s) => `sector:${s.sector}` === v);
    $("symbols").value = chosen.map((s) => s.symbol).join(" ");
  };
  $("symbols").addEventListener("input", () => { select.value = ""; });
  if (u.last_date) {
    $("as-of").max = u.last_date;
    evaluation.defaults(u.first_date, u.last_date);
  }
}

async function start() {
  await loadUniverse();
  await saved.refresh();
  await saved.refreshJobs();
  editor.validate();
}

// A token typed in after a 401: load what the page could not.
const tokenField = $("token");
if (tokenField) tokenField.addEventListener("change", () => { notice.clear(); start(); });

start();
window.calcPage = { editor, results, evaluation, runner }; // for a debugging console
