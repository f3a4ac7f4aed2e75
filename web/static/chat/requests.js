// What the agent asks of the user: permissions to allow or reject, questions to answer.
import { $, el, call } from "../common.js";
import { api, state, input, announce } from "./page.js";

const requestsEl = $("requests");
const requests = new Map();

export function removeRequest(id) {
  const r = requests.get(id);
  if (r) { r.remove(); requests.delete(id); }
}

// clearRequests takes every request off the page, before the conversation is read again.
export function clearRequests() {
  requests.forEach(function (r) { r.remove(); });
  requests.clear();
}

function requestError(card, err) {
  const p = card.querySelector(".error") || card.appendChild(el("p", "error"));
  p.setAttribute("role", "alert");
  p.textContent = err.message;
  card.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
}

export function showPermission(perm) {
  if (perm.sessionID !== state.session || requests.has(perm.id)) return;
  const card = el("div", "request permission");
  card.setAttribute("role", "group");
  const title = el("h3", null, "The agent asks for permission");
  title.id = "req-" + perm.id;
  card.setAttribute("aria-labelledby", title.id);
  card.appendChild(title);
  card.appendChild(el("p", null, "To use " + perm.permission + (perm.patterns && perm.patterns.length ? " on " + perm.patterns.join(", ") : "") + "."));
  [["once", "Allow once"], ["always", "Always allow"], ["reject", "Reject"]].forEach(function (r) {
    const b = el("button", r[0] === "reject" ? "secondary" : null, r[1]);
    b.type = "button";
    b.addEventListener("click", function () {
      card.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
      call("POST", api + "/permissions/" + encodeURIComponent(perm.id), { reply: r[0] })
        .then(function () { removeRequest(perm.id); input.focus(); },
              function (err) { if (err.status === 409 || err.status === 404) removeRequest(perm.id); else requestError(card, err); });
    });
    card.appendChild(b);
  });
  requestsEl.appendChild(card);
  requests.set(perm.id, card);
  announce("The agent asks for permission to use " + perm.permission + ".");
  if (document.activeElement === document.body || document.activeElement === input) card.querySelector("button").focus();
}

export function showQuestion(qn) {
  if (qn.sessionID !== state.session || requests.has(qn.id)) return;
  const card = el("form", "request question");
  const title = el("h3", null, "The agent asks");
  title.id = "req-" + qn.id;
  card.setAttribute("aria-labelledby", title.id);
  card.appendChild(title);
  (qn.questions || []).forEach(function (item, i) {
    const fs = el("fieldset");
    fs.appendChild(el("legend", null, (item.header ? item.header + ": " : "") + item.question));
    (item.options || []).forEach(function (o, j) {
      const id = "q-" + qn.id + "-" + i + "-" + j;
      const lab = el("label", "check");
      const box = el("input");
      box.type = item.multiple ? "checkbox" : "radio";
      box.name = "q" + i; box.value = o.label; box.id = id;
      lab.htmlFor = id;
      lab.appendChild(box);
      lab.appendChild(document.createTextNode(" " + o.label + (o.description ? " — " + o.description : "")));
      fs.appendChild(lab);
    });
    if (item.custom !== false) {
      const cid = "q-" + qn.id + "-" + i + "-own";
      const cl = el("label", null, "Or answer in your words"); cl.htmlFor = cid;
      const ci = el("input"); ci.type = "text"; ci.id = cid; ci.name = "q" + i + "-own";
      fs.appendChild(cl); fs.appendChild(ci);
    }
    card.appendChild(fs);
  });
  const send = el("button", null, "Answer"); send.type = "submit";
  const reject = el("button", "secondary", "Decline"); reject.type = "button";
  card.appendChild(send); card.appendChild(reject);
  function done(body) {
    card.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
    call("POST", api + "/questions/" + encodeURIComponent(qn.id), body)
      .then(function () { removeRequest(qn.id); input.focus(); },
            function (err) { if (err.status === 409 || err.status === 404) removeRequest(qn.id); else requestError(card, err); });
  }
  card.addEventListener("submit", function (e) {
    e.preventDefault(); e.stopPropagation();
    const answers = (qn.questions || []).map(function (item, i) {
      const picked = Array.prototype.map.call(card.querySelectorAll('input[name="q' + i + '"]:checked'), function (b) { return b.value; });
      const own = card.querySelector('input[name="q' + i + '-own"]');
      if (own && own.value.trim()) picked.push(own.value.trim());
      return picked;
    });
    done({ answers: answers });
  });
  reject.addEventListener("click", function () { done({ reject: true }); });
  requestsEl.appendChild(card);
  requests.set(qn.id, card);
  announce("The agent asks: " + ((qn.questions || [])[0] || {}).question);
}
