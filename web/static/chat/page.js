// What the conversation's modules share: the project's API, the session shown, the status
// line and the announcer.
import { $ } from "../common.js";

export const root = $("workspace");
export const api = root.dataset.api;

// session is the session shown (the query's, else the project's current one, once known);
// started, whether the conversation has been read once.
export const state = { session: new URLSearchParams(location.search).get("session") || "", started: false };

// q is path under the project's API, for the session shown.
export function q(path) {
  const sep = path.indexOf("?") < 0 ? "?" : "&";
  return api + path + (state.session ? sep + "session=" + encodeURIComponent(state.session) : "");
}

// The composer, which more than one part of the page uses.
export const input = $("message"), errEl = $("composer-error");

const statusEl = $("agent-status"), announcer = $("announcer"), conv = $("conversation"), stopBtn = $("stop");

export function setStatus(text) { statusEl.textContent = text; }

let busy = false;

// setBusy says whether the agent is working; with no argument, says again what it last was
// (after a status that was about something else).
export function setBusy(b) {
  if (b !== undefined) busy = b;
  stopBtn.disabled = !busy;
  conv.setAttribute("aria-busy", busy ? "true" : "false");
  if (busy) setStatus("The agent is working…");
  else setStatus("The agent is waiting for your message.");
}

export function announce(text) {
  announcer.textContent = "";
  // A change after a tick is what screen readers notice.
  setTimeout(function () { announcer.textContent = text; }, 50);
}
