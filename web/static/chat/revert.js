// Undo and restore: a user message's "Undo from here" rolls the files and the conversation
// back to before it; Restore puts them back until the next message makes the undo final.
import { $, call } from "../common.js";
import { api, state, input, errEl, setStatus, setBusy, announce } from "./page.js";
import { load } from "./stream.js";

const dock = $("revert-dock");
let pendingRevert = null;

// showRevert shows the pending undo (or none): "N messages rolled back · Restore".
export function showRevert(rev) {
  pendingRevert = rev || null;
  dock.hidden = !rev;
  if (!rev) return;
  $("revert-count").textContent = rev.messages === 1 ? "1 message rolled back" : rev.messages + " messages rolled back";
}

// pendingMessage is the id of the first message the pending undo hides, or "".
export function pendingMessage() { return (pendingRevert && pendingRevert.messageId) || ""; }

// undone says whether message id is hidden by the pending undo: OpenCode keeps such messages
// until the next prompt, and a late event about one must not bring it back to the page.
export function undone(id) { return !!(pendingRevert && id && id >= pendingRevert.messageId); }

export function revert(messageId, btn) {
  btn.disabled = true;
  errEl.textContent = "";
  setStatus("Undoing…");
  call("POST", api + "/revert", { messageId: messageId, session: state.session }).then(function () {
    return load();
  }).then(function () {
    // The undone prompt comes back into the composer, to edit and send again.
    if (pendingRevert && pendingRevert.prompt && !input.value.trim()) input.value = pendingRevert.prompt;
    input.focus();
    announce("Undone. " + $("revert-count").textContent + ".");
  }, function (err) {
    btn.disabled = false;
    errEl.textContent = err.message;
    setBusy();
  });
}

export function initRestore() {
  $("restore").addEventListener("click", function (e) {
    const b = e.currentTarget, prompt = pendingRevert && pendingRevert.prompt;
    b.disabled = true;
    errEl.textContent = "";
    call("POST", api + "/unrevert", { session: state.session }).then(function () {
      if (prompt && input.value === prompt) input.value = "";
      return load();
    }).then(function () {
      announce("Restored.");
    }, function (err) { errEl.textContent = err.message; }).then(function () { b.disabled = false; });
  });
}
