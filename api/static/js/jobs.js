// Submitting a job and following it: the progress bar, the status line, Cancel.

import { call, newKey } from "./api.js";

const POLL_MS = 300;
const FINISHED = new Set(["completed", "failed", "timed_out", "cancelled"]);

export class JobRunner {
  constructor({ onFinished, onError, onProgress }) {
    this.onFinished = onFinished;
    this.onError = onError;
    this.onProgress = onProgress || (() => {});
    this.progress = document.getElementById("progress");
    this.status = document.getElementById("job-status");
    this.cancelButton = document.getElementById("cancel");
    this.current = null;
    this.cancelButton.addEventListener("click", () => this.cancel());
  }

  get busy() { return this.current !== null; }

  // POST the body to `path` with an Idempotency-Key (a retry of the same click queues once).
  async submit(path, body, kind, onAccepted) {
    const job = await call("POST", path, body, { "Idempotency-Key": newKey() });
    if (onAccepted) onAccepted(job);
    this.follow(job, kind);
    return job;
  }

  follow(job, kind) {
    this.current = { id: job.job_id, kind, cancelled: false };
    this.cancelButton.disabled = false;
    this.progress.hidden = false;
    this.update(job);
    if (FINISHED.has(job.status)) this.finish(job);
    else this.poll();
  }

  update(job) {
    const { done, total } = job.progress || { done: 0, total: 0 };
    this.progress.max = Math.max(1, total);
    this.progress.value = done;
    this.progress.setAttribute("aria-valuetext", `${done} of ${total}`);
    const unit = this.current && this.current.kind === "evaluation" ? "symbol-dates" : "symbols";
    this.status.textContent = `Job ${job.status}: ${done} of ${total} ${unit}`;
    this.onProgress(job);
  }

  async poll() {
    const mine = this.current;
    while (this.current === mine) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (this.current !== mine) return;
      let job;
      try {
        job = await call("GET", `/jobs/${mine.id}`);
      } catch (err) {
        if (err.status === 429 || err.status === 503 || err.status === 0) {
          this.status.textContent = "Waiting for the service…";
          await new Promise((r) => setTimeout(r, 1000 * Number(err.retryAfter || 1)));
          continue; // a passing outage: keep following the job
        }
        this.end();
        this.onError(err, "Following the job");
        return;
      }
      if (this.current !== mine) return;
      this.update(job);
      if (FINISHED.has(job.status)) { this.finish(job); return; }
    }
  }

  finish(job) {
    const kind = this.current ? this.current.kind : "execute";
    this.end();
    const took = job.duration_ms !== null && job.duration_ms !== undefined ?
      ` in ${(job.duration_ms / 1000).toFixed(1)} s` : "";
    this.status.textContent = `Job ${job.status}${took}` +
      (job.error ? `: ${job.error.type}: ${job.error.message}` : "");
    this.onFinished(job, kind);
  }

  end() {
    this.current = null;
    this.cancelButton.disabled = true;
    this.progress.hidden = true;
  }

  async cancel() {
    if (!this.current) return;
    const mine = this.current;
    this.status.textContent = "Cancelling…";
    try {
      const job = await call("DELETE", `/jobs/${mine.id}`);
      if (this.current === mine && FINISHED.has(job.status)) this.finish(job);
    } catch (err) {
      this.onError(err, "Cancel");
    }
  }
}
