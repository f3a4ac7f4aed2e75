// The composer: sending the next message, with the model chosen for it, and Stop.
import { $, call } from "../common.js";
import { q, input, errEl, setStatus, setBusy } from "./page.js";

const form = $("composer"), sendBtn = $("send"), stopBtn = $("stop"), modelSel = $("model");
let sending = false;

function send() {
  const text = input.value.trim();
  if (sending) return;
  if (!text) { errEl.textContent = "Write a message first."; input.focus(); return; }
  sending = true;
  errEl.textContent = "";
  input.disabled = true; sendBtn.disabled = true;
  sendBtn.setAttribute("aria-busy", "true");
  const body = { text: text };
  if (modelSel.value) body.modelId = modelSel.value;
  call("POST", q("/messages"), body).then(function () {
    input.value = "";
    setBusy(true);
  }, function (err) {
    errEl.textContent = err.message;
  }).then(function () {
    sending = false;
    input.disabled = false; sendBtn.disabled = false;
    sendBtn.removeAttribute("aria-busy");
    input.focus();
  });
}

export function initComposer() {
  form.addEventListener("submit", function (e) {
    e.preventDefault(); e.stopPropagation(); // not the page-wide one-submit guard: a chat sends again
    send();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  stopBtn.addEventListener("click", function () {
    stopBtn.disabled = true;
    call("POST", q("/abort")).then(function () { setStatus("Stopping…"); },
      function (err) { stopBtn.disabled = false; errEl.textContent = err.message; });
  });
}
