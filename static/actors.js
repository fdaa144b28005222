// The actor panel: each actor's state, restarts and queue, and a restart button, behind the
// admin token kept for the browser session.

import { api } from "./api.js";
import { $, integer, isNumber, newRow, setStatus, setText, syncRows } from "./util.js";

const ACTORS_EVERY_MS = 2000;
// Without a valid token, or with the endpoints disabled, asking every 2 s only fills logs;
// typing a token asks at once anyway.
const ACTORS_REFUSED_EVERY_MS = 30000;
const TOKEN_KEY = "vmtelemetry.adminToken";

let everyMs = ACTORS_EVERY_MS;

export function actorsEveryMs() {
  return everyMs;
}

function authHeaders() {
  const token = $("#admin-token").value;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export async function refreshActors() {
  const token = $("#admin-token").value;
  const status = $("#admin-status");
  try {
    const body = await api("/api/admin/actors", { headers: authHeaders() });
    if (token !== $("#admin-token").value) return;
    renderActors(body.actors);
    setStatus(status, "ok", `${body.actors.length} actors`);
    everyMs = ACTORS_EVERY_MS;
  } catch (error) {
    if (token !== $("#admin-token").value) return;
    renderActors([]);
    const refused = error.status === 401 || error.status === 403;
    everyMs = refused ? ACTORS_REFUSED_EVERY_MS : ACTORS_EVERY_MS;
    if (error.status === 403) {
      setStatus(status, "disabled", "Admin endpoints disabled (no admin token is configured)");
    } else if (error.status === 401) {
      if (token) setStatus(status, "wrong-token", "Wrong token");
      else setStatus(status, "token-needed", "Admin token needed: enter it to see the actors");
    } else {
      setStatus(status, "error", `Actors unavailable: ${error.message}`);
    }
  }
}

function renderActors(actors) {
  syncRows($("#actors-table tbody"), actors, (actor) => actor.name, newActorRow, fillActorRow);
  $("#actors-table").hidden = actors.length === 0;
}

function newActorRow({ name }) {
  const tr = newRow(["name", "kind", "state", "restarts num", "queue num", "error", "action"], 2);
  tr.dataset.actor = name;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "restart";
  button.dataset.actor = name;
  button.textContent = "Restart";
  tr.cells[6].appendChild(button);
  return tr;
}

function fillActorRow(tr, actor) {
  const [name, kind, stateCell, restarts, queue, error] = tr.cells;
  setText(name, actor.name);
  setText(kind, actor.kind);
  stateCell.firstChild.dataset.state = actor.state;
  setText(stateCell.firstChild, actor.state);
  setText(restarts, String(actor.restarts));
  setText(queue, isNumber(actor.queue_depth) ? integer.format(actor.queue_depth) : "—");
  setText(error, actor.last_error || "—");
  error.title = actor.last_error_time ? `at ${actor.last_error_time}` : "";
}

async function restartActor(button, runActors) {
  const name = button.dataset.actor;
  const message = $("#admin-message");
  button.disabled = true;
  try {
    const body = await api(`/api/admin/actors/${encodeURIComponent(name)}/restart`, {
      method: "POST",
      headers: authHeaders(),
    });
    setStatus(message, "ok", `${name}: ${body.status}`);
  } catch (error) {
    setStatus(message, "error", `Restart of ${name} failed: ${error.message}`);
  } finally {
    button.disabled = false;
    runActors();
  }
}

// The token typed earlier in this browser session, before the first poll.
export function restoreToken() {
  $("#admin-token").value = sessionStorage.getItem(TOKEN_KEY) || "";
}

// `tokenChanged`: debounced, asks again once typing pauses.
export function wireActors(runActors, tokenChanged) {
  const tokenInput = $("#admin-token");
  tokenInput.addEventListener("input", () => {
    if (tokenInput.value) sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
    else sessionStorage.removeItem(TOKEN_KEY);
    tokenChanged();
  });
  $("#admin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runActors();
  });
  $("#actors-table tbody").addEventListener("click", (event) => {
    const button = event.target.closest("button.restart");
    if (button && !button.disabled) restartActor(button, runActors);
  });
}
