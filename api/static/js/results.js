// The `Results` table: a row per symbol, sortable by any column, filterable, with each error's
// type, message and line (a button that puts the editor's cursor there), print output on
// demand, and a histogram of the values.

import { histogram } from "./charts.js";

const VALUE = "value";

export function valueText(v) {
  if (v === null || v === undefined) return "";
  if (!Number.isFinite(v)) return String(v);
  return Number(v.toPrecision(6)).toString();
}

// Rows from a job (or a saved script's last run): {symbol, values, error, stdout}.
export function rowsOf(job) {
  const results = job.results || {}, errors = job.errors || {}, stdout = job.stdout || {};
  const symbols = [...Object.keys(results)];
  for (const s of Object.keys(errors)) if (!(s in results)) symbols.push(s);
  const columns = [];
  const seen = new Set();
  for (const v of Object.values(results)) {
    if (v && typeof v === "object") {
      for (const k of Object.keys(v)) if (!seen.has(k)) { seen.add(k); columns.push(k); }
    }
  }
  const dictOnly = columns.length > 0 &&
    Object.values(results).every((v) => v === null || typeof v === "object");
  if (!dictOnly) columns.unshift(VALUE);
  const rows = symbols.map((symbol) => {
    const raw = results[symbol];
    const values = {};
    for (const c of columns) {
      if (c === VALUE) values[c] = typeof raw === "number" ? raw : null;
      else values[c] = raw && typeof raw === "object" && typeof raw[c] === "number" ? raw[c] : null;
    }
    return { symbol, values, error: errors[symbol] || null, stdout: stdout[symbol] || null };
  });
  return { columns, rows };
}

export class ResultsTable {
  constructor(editor) {
    this.editor = editor;
    this.table = document.getElementById("results-table");
    this.filter = document.getElementById("results-filter");
    this.summary = document.getElementById("results-summary");
    this.hist = document.getElementById("histogram");
    this.data = { columns: [], rows: [] };
    this.sort = { key: "symbol", dir: 1 };
    this.open = new Set();
    this.filter.addEventListener("change", () => this.render());
  }

  show(job) {
    this.data = rowsOf(job);
    this.sort = { key: "symbol", dir: 0 }; // the order the symbols were asked
    this.open.clear();
    this.render();
  }

  clear() { this.data = { columns: [], rows: [] }; this.render(); }

  headers() {
    const cols = [["symbol", "Symbol"]];
    for (const c of this.data.columns) cols.push([`v:${c}`, c === VALUE ? "Value" : c]);
    cols.push(["etype", "Error type"], ["emsg", "Error message"], ["line", "Line"],
      ["stdout", "Output"]);
    return cols;
  }

  key(row, key) {
    if (key === "symbol") return row.symbol;
    if (key.startsWith("v:")) return row.values[key.slice(2)];
    if (key === "etype") return row.error ? row.error.type : null;
    if (key === "emsg") return row.error ? row.error.message : null;
    if (key === "line") return row.error && row.error.line ? row.error.line : null;
    if (key === "stdout") return row.stdout;
    return null;
  }

  sorted(rows) {
    const { key, dir } = this.sort;
    if (!dir) return rows;
    return [...rows].sort((a, b) => {
      const x = this.key(a, key), y = this.key(b, key);
      if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
      if (y === null || y === undefined) return -1; // empty cells last either way
      const c = typeof x === "number" && typeof y === "number" ? x - y :
        String(x).localeCompare(String(y));
      return c * dir;
    });
  }

  visible() {
    const mode = this.filter.value;
    return this.data.rows.filter((r) =>
      mode === "errors" ? r.error !== null : mode === "values" ? r.error === null : true);
  }

  render() {
    const head = this.table.tHead, body = this.table.tBodies[0];
    if (!this.data.rows.length) { // nothing to show yet: no empty header row either
      head.replaceChildren();
      body.replaceChildren();
      this.summary.textContent = "";
      this.hist.replaceChildren();
      return;
    }
    const tr = document.createElement("tr");
    for (const [key, label] of this.headers()) {
      const th = document.createElement("th");
      th.scope = "col";
      const active = this.sort.key === key && this.sort.dir;
      th.setAttribute("aria-sort", active ? (this.sort.dir > 0 ? "ascending" : "descending") :
        "none");
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label + (active ? (this.sort.dir > 0 ? " ▲" : " ▼") : "");
      b.setAttribute("aria-label", `Sort by ${label}`);
      b.addEventListener("click", () => {
        this.sort = { key, dir: this.sort.key === key && this.sort.dir > 0 ? -1 : 1 };
        this.render();
      });
      th.appendChild(b);
      tr.appendChild(th);
    }
    head.replaceChildren(tr);
    const rows = this.sorted(this.visible());
    const width = this.headers().length;
    const out = [];
    for (const r of rows) {
      out.push(this.row(r));
      if (this.open.has(r.symbol) && r.stdout !== null) {
        const extra = document.createElement("tr");
        const td = document.createElement("td");
        td.colSpan = width;
        const pre = document.createElement("pre");
        pre.className = "output";
        pre.setAttribute("aria-label", `Output of ${r.symbol}`);
        pre.textContent = r.stdout;
        td.appendChild(pre);
        extra.appendChild(td);
        out.push(extra);
      }
    }
    body.replaceChildren(...out);
    const errors = this.data.rows.filter((r) => r.error).length;
    this.summary.textContent = this.data.rows.length ?
      `${this.data.rows.length} symbols, ${errors} with errors; showing ${rows.length}` : "";
    const col = this.data.columns[0];
    const xs = this.data.rows.map((r) => r.values[col]).filter((v) => Number.isFinite(v));
    if (col !== undefined && xs.length) {
      histogram(this.hist, xs, `Histogram of ${col === VALUE ? "values" : col}`);
    } else {
      this.hist.replaceChildren();
    }
  }

  row(r) {
    const tr = document.createElement("tr");
    if (r.error) tr.className = "error";
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = r.symbol;
    tr.appendChild(th);
    for (const c of this.data.columns) {
      const td = document.createElement("td");
      td.className = "num";
      const v = r.values[c];
      td.textContent = valueText(v);
      if (v !== null) td.title = String(v);
      tr.appendChild(td);
    }
    const cell = (text) => {
      const td = document.createElement("td");
      td.textContent = text || "";
      tr.appendChild(td);
      return td;
    };
    cell(r.error ? r.error.type : "");
    cell(r.error ? r.error.message : "");
    const lineCell = cell("");
    if (r.error && r.error.line) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.textContent = `line ${r.error.line}`;
      b.setAttribute("aria-label", `Go to line ${r.error.line} (${r.symbol})`);
      b.addEventListener("click", () => this.editor.goToLine(r.error.line));
      lineCell.appendChild(b);
    }
    const outCell = cell("");
    if (r.stdout !== null) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      const isOpen = this.open.has(r.symbol);
      b.textContent = isOpen ? "Hide output" : "Show output";
      b.setAttribute("aria-expanded", String(isOpen));
      b.setAttribute("aria-label", `${isOpen ? "Hide" : "Show"} output of ${r.symbol}`);
      b.addEventListener("click", () => {
        if (this.open.has(r.symbol)) this.open.delete(r.symbol); else this.open.add(r.symbol);
        this.render();
      });
      outCell.appendChild(b);
    }
    return tr;
  }
}
