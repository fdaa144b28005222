// Talking to the service: JSON answers, its errors as ApiError, ETag revalidation, and polling
// that never piles up.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status; // 0: no answer at all
    this.code = code;
  }
}

// The answer's body, null for a 304.
async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {
      cache: "no-store",
      ...options,
      headers: { Accept: "application/json", ...options.headers },
    });
  } catch (error) {
    throw new ApiError(0, "network", `no answer from the service (${error.message})`);
  }
  if (response.status === 304) return { response, body: null };
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page): the status line says enough.
  }
  if (!response.ok) {
    const error = (body && body.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `${response.status} ${response.statusText}`,
    );
  }
  return { response, body };
}

export async function api(path, options = {}) {
  return (await call(path, options)).body;
}

// The last answer of each kind with its ETag: polling the same path again sends
// If-None-Match, and a 304 (no body) reuses the answer held. `changed` is false then.
const validated = new Map();

export async function apiValidated(kind, path) {
  const last = validated.get(kind);
  const same = last !== undefined && last.path === path;
  const headers = same ? { "If-None-Match": last.etag } : {};
  const { response, body } = await call(path, { headers });
  if (response.status === 304 && same) return { body: last.body, changed: false };
  const etag = response.headers.get("ETag");
  if (etag && body) validated.set(kind, { path, etag, body });
  else validated.delete(kind);
  return { body, changed: true };
}

// Runs `task` now and again `intervalMs()` after each run ends, so slow answers never pile
// up. Calling the returned function runs it at once (or right after the run in progress).
export function poll(intervalMs, task) {
  let timer = null;
  let running = false;
  let again = false;
  async function run() {
    clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } catch (error) {
      console.error(error);
    } finally {
      running = false;
      if (again) {
        again = false;
        run();
      } else {
        timer = setTimeout(run, intervalMs());
      }
    }
  }
  run();
  return run;
}

export function historyUrl(params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined) query.set(key, value);
  }
  return `/api/telemetry/history?${query}`;
}
