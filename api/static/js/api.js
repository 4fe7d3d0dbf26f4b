// The public API as the page uses it: one fetch wrapper that sends the token, and turns every
// failure the API can answer into an ApiError with a sentence a person can read.

export const PREFIX = "/api/custom-calculations";
const TOKEN_KEY = "calc-token";

export class ApiError extends Error {
  constructor(status, type, message, details, retryAfter) {
    super(message);
    this.status = status;
    this.type = type;
    this.details = details || {};
    this.retryAfter = retryAfter;
  }
}

export function getToken() {
  const field = document.getElementById("token");
  const value = field ? field.value.trim() : "";
  return value || sessionStorage.getItem(TOKEN_KEY) || "";
}

export function bindTokenField() {
  const field = document.getElementById("token");
  if (!field) return;
  field.value = sessionStorage.getItem(TOKEN_KEY) || "";
  // Kept for this tab's session only: never localStorage, never a cookie.
  field.addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, field.value.trim()));
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function headers(extra) {
  const h = { Accept: "application/json", ...extra };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

async function failure(response) {
  let type = `HTTP ${response.status}`, message = response.statusText, details = {};
  try {
    const body = await response.json();
    if (body && body.error) ({ type, message, details = {} } = body.error);
  } catch (_) { /* not JSON: keep the status line */ }
  return new ApiError(response.status, type, message, details,
    response.headers.get("Retry-After"));
}

export async function call(method, path, body, extraHeaders) {
  const init = { method, headers: headers(extraHeaders) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(PREFIX + path, init);
  } catch (err) {
    throw new ApiError(0, "NetworkError", "the service cannot be reached", {}, null);
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

// A CSV export, fetched with the token and handed to the browser as a download.
export async function download(path, filename) {
  let response;
  try {
    response = await fetch(PREFIX + path, { headers: headers({ Accept: "text/csv" }) });
  } catch (err) {
    throw new ApiError(0, "NetworkError", "the service cannot be reached", {}, null);
  }
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function detailLines(details) {
  return Object.entries(details || {})
    .filter(([k]) => k !== "line" && k !== "column")
    .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
}

// What a person reads for each failure (API.md "Errors").
export function describe(err, doing) {
  const what = doing ? `${doing} failed: ` : "";
  if (!(err instanceof ApiError)) return `${what}${err && err.message ? err.message : err}`;
  const details = detailLines(err.details);
  const more = details.length ? `\n${details.join("\n")}` : "";
  switch (err.status) {
    case 0:
      return `${what}the service cannot be reached. Check your connection and try again.`;
    case 400: {
      const line = err.details && err.details.line ? ` at line ${err.details.line}` : "";
      return `${what}${err.type}${line}: ${err.message}${more}`;
    }
    case 401:
      return document.getElementById("token")
        ? `${what}not signed in: this service needs a token. ` +
          (getToken() ? "The token in the Token field was refused: check it." :
            "Enter your token in the Token field.")
        : `${what}not signed in (401): ${err.message}`;
    case 404:
      return `${what}not found: ${err.message} (it may have expired or belong to someone else).`;
    case 409:
      return `${what}conflict: ${err.message}${more}`;
    case 413:
      return `${what}too large: ${err.message}`;
    case 415:
      return `${what}${err.message}`;
    case 429: {
      const wait = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : " Try again shortly.";
      return `${what}too many requests: ${err.message}.${wait}`;
    }
    case 503:
      return `${what}the service is unavailable right now (${err.message}). ` +
        "Nothing was half-done; try again in a moment.";
    default:
      return `${what}${err.type}: ${err.message}${more}`;
  }
}
