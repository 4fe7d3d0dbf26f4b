// The code editor (CodeMirror 5, vendored) with validation as one types, debounced.

import { ApiError, call, describe } from "./api.js";

const DEFAULT_CODE = `# 20-day momentum scaled by 60-day volatility
window = params.get("window", 20)
r = returns(close)[-60:]
vol = stdev([x for x in r if x is not None])
result = (close[-1] / close[-1 - window] - 1) / vol if vol else None
`;
const DEBOUNCE_MS = 400;

export function createEditor(host) {
  const cm = window.CodeMirror(host, {
    value: DEFAULT_CODE,
    mode: "python",
    lineNumbers: true,
    indentUnit: 4,
    tabSize: 4,
    indentWithTabs: false,
    // A contenteditable element is what one types into, so it carries the name `Script`.
    inputStyle: "contenteditable",
    screenReaderLabel: "Script",
    extraKeys: { Tab: (c) => c.replaceSelection("    ") },
  });
  const input = cm.getInputField();
  input.setAttribute("role", "textbox");
  input.setAttribute("aria-multiline", "true");
  input.setAttribute("aria-describedby", "code-problem");
  return new Editor(cm);
}

class Editor {
  constructor(cm) {
    this.cm = cm;
    this.marked = null;
    this.timer = null;
    this.seq = 0;
    this.problem = document.getElementById("code-problem");
    this.ok = document.getElementById("code-ok");
    cm.on("change", () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.validate(), DEBOUNCE_MS);
    });
  }

  get code() { return this.cm.getValue(); }

  set code(text) { this.cm.setValue(text); this.cm.clearHistory(); }

  goToLine(line) {
    const at = Math.max(0, Math.min(this.cm.lineCount() - 1, line - 1));
    this.cm.focus();
    this.cm.setCursor({ line: at, ch: 0 });
    this.cm.scrollIntoView({ line: at, ch: 0 }, 40);
  }

  clearMark() {
    if (this.marked !== null) {
      this.cm.removeLineClass(this.marked, "wrap", "cm-error-line");
      this.cm.removeLineClass(this.marked, "gutter", "cm-error-gutter");
      this.marked = null;
    }
    this.problem.hidden = true;
    this.problem.textContent = "";
  }

  mark(err) {
    this.clearMark();
    const line = err.details && err.details.line;
    if (line) {
      const at = Math.max(0, Math.min(this.cm.lineCount() - 1, line - 1));
      this.marked = this.cm.addLineClass(at, "wrap", "cm-error-line");
      this.cm.addLineClass(at, "gutter", "cm-error-gutter");
      const col = err.details.column ? `, column ${err.details.column}` : "";
      this.problem.textContent = `${err.type} on line ${line}${col}: ${err.message}`;
    } else {
      this.problem.textContent = describe(err);
    }
    this.problem.hidden = false;
    this.ok.hidden = true;
  }

  // POST /validate; marks the line of a syntax or security error. Returns whether it compiles
  // (null when validation could not say, e.g. the service is down).
  async validate() {
    clearTimeout(this.timer);
    const seq = ++this.seq;
    const code = this.code;
    if (!code.trim()) {
      this.clearMark();
      this.ok.hidden = true;
      return false;
    }
    try {
      await call("POST", "/validate", { code });
      if (seq !== this.seq) return null;
      this.clearMark();
      this.ok.textContent = "The script compiles.";
      this.ok.hidden = false;
      return true;
    } catch (err) {
      if (seq !== this.seq) return null;
      if (err instanceof ApiError && err.status === 400) {
        this.mark(err);
        return false;
      }
      this.clearMark();
      this.ok.hidden = true;
      this.problem.textContent = describe(err, "Validation");
      this.problem.hidden = false;
      return null;
    }
  }
}
