// Save (with name, description, schedule), the `Saved scripts` list and the recent jobs.

import { call } from "./api.js";

const $ = (id) => document.getElementById(id);

function button(text, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

export class SavedScripts {
  constructor(page) {
    this.page = page;
    this.current = null; // the saved script open in the editor
    this.list = $("saved-scripts");
    this.jobs = $("recent-jobs");
    this.status = $("save-status");
    $("save").addEventListener("click", () => this.save());
    $("new-script").addEventListener("click", () => this.newScript());
  }

  body(script) {
    const name = $("script-name").value.trim();
    if (!name) return "Name: give the script a name before saving it.";
    const description = $("script-description").value;
    const body = { name, description: description || null, code: this.page.editor.code,
      schedule: null };
    const cron = $("schedule-cron").value.trim();
    if (cron) {
      const params = this.page.params();
      if (params === undefined) return null;
      const symbols = this.page.symbols();
      if (!symbols.length) return "A schedule runs over the symbols: enter at least one.";
      body.schedule = { cron, symbols, params, lookback: this.page.lookback() };
      const tz = $("schedule-timezone").value.trim();
      if (tz) body.schedule.timezone = tz;
    } else if (script && script.schedule && !cron) {
      body.schedule = null;
    }
    return body;
  }

  async save() {
    this.page.notice.clear();
    const body = this.body(this.current);
    if (body === null) return;
    if (typeof body === "string") { this.page.notice.show(body); $("script-name").focus(); return; }
    try {
      const script = this.current ?
        await call("PUT", `/scripts/${this.current.id}`, body) :
        await call("POST", "/scripts", body);
      this.current = script;
      this.status.textContent = `Saved “${script.name}”.`;
      await this.refresh();
    } catch (err) {
      if (err.status === 400 && err.details && err.details.line) this.page.editor.mark(err);
      this.status.textContent = "";
      this.page.fail(err, "Save");
    }
  }

  newScript() {
    this.current = null;
    $("script-name").value = "";
    $("script-description").value = "";
    $("schedule-cron").value = "";
    $("schedule-timezone").value = "";
    this.status.textContent = "A new script: Save creates it.";
  }

  open(script) {
    this.current = script;
    this.page.editor.code = script.code;
    $("script-name").value = script.name;
    $("script-description").value = script.description || "";
    const sch = script.schedule;
    $("schedule-cron").value = sch ? sch.cron : "";
    $("schedule-timezone").value = sch && sch.timezone ? sch.timezone : "";
    if (sch) {
      $("symbols").value = sch.symbols.join(" ");
      $("params").value = JSON.stringify(sch.params || {});
      $("lookback").value = sch.lookback;
    }
    this.status.textContent = `Opened “${script.name}”.`;
  }

  async rename(script) {
    const name = window.prompt(`New name for “${script.name}”`, script.name);
    if (name === null || !name.trim() || name.trim() === script.name) return;
    const body = { name: name.trim(), description: script.description, code: script.code,
      schedule: script.schedule };
    try {
      const updated = await call("PUT", `/scripts/${script.id}`, body);
      if (this.current && this.current.id === script.id) this.open(updated);
      this.status.textContent = `Renamed to “${updated.name}”.`;
      await this.refresh();
    } catch (err) { this.page.fail(err, "Rename"); }
  }

  async remove(script) {
    if (!window.confirm(`Delete the saved script “${script.name}”? This cannot be undone.`)) return;
    try {
      await call("DELETE", `/scripts/${script.id}`);
      if (this.current && this.current.id === script.id) this.current = null;
      this.status.textContent = `Deleted “${script.name}”.`;
      await this.refresh();
    } catch (err) { this.page.fail(err, "Delete"); }
  }

  async lastRun(script) {
    try {
      const run = await call("GET", `/scripts/${script.id}/results`);
      this.page.showRun(run);
      this.status.textContent = `Last run of “${script.name}”, finished ${run.finished_at}.`;
    } catch (err) {
      if (err.status === 404) this.page.notice.show(`“${script.name}” has no finished run yet.`, "info");
      else this.page.fail(err, "Last results");
    }
  }

  async refresh() {
    let page;
    try {
      page = await call("GET", "/scripts?limit=100");
    } catch (err) { this.page.fail(err, "Loading saved scripts"); return; }
    const items = page.items.map((s) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = s.name + (s.schedule ? ` (${s.schedule.cron})` : "");
      if (s.description) name.title = s.description;
      li.append(name,
        button("Open", `Open ${s.name}`, () => this.open(s)),
        button("Rename", `Rename ${s.name}`, () => this.rename(s)),
        button("Delete", `Delete ${s.name}`, () => this.remove(s)),
        button("Last results", `Last results of ${s.name}`, () => this.lastRun(s)));
      return li;
    });
    if (!items.length) {
      const li = document.createElement("li");
      li.textContent = "No saved scripts yet.";
      items.push(li);
    }
    this.list.replaceChildren(...items);
  }

  async refreshJobs() {
    let page;
    try {
      page = await call("GET", "/jobs?limit=10");
    } catch (err) { return; } // the list is a convenience: its failure is not the user's task
    const items = page.items.map((j) => {
      const li = document.createElement("li");
      const text = document.createElement("span");
      text.className = "name";
      const when = (j.created_at || "").replace("T", " ").slice(0, 19);
      const kind = j.kind === "evaluation" ? "evaluation" : "run";
      const { done, total } = j.progress || { done: 0, total: 0 };
      text.textContent = `${when} ${kind} ${j.status} (${done}/${total})`;
      li.append(text, button("Open", `Open job ${j.job_id.slice(0, 8)}`, () => this.openJob(j)));
      return li;
    });
    this.jobs.replaceChildren(...items);
  }

  async openJob(summary) {
    try {
      const job = await call("GET", `/jobs/${summary.job_id}`);
      if (["queued", "running"].includes(job.status)) this.page.follow(job);
      else this.page.openJob(job);
    } catch (err) { this.page.fail(err, "Opening the job"); }
  }
}
