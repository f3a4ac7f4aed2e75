// The session picker, New session, and the model picker for the next message.
import { $, el, call } from "../common.js";
import { api, state, errEl } from "./page.js";

const sessionSel = $("session"), modelSel = $("model");

export const sessions = {
  list: [],
  load: function () {
    return call("GET", api + "/sessions").then(function (body) {
      if (!state.session) state.session = body.current;
      sessions.list = body.sessions || [];
      sessions.render();
    }, function () {});
  },
  seen: function (info) {
    if (!info || info.parentID) return; // sub-agents' sessions belong to their parent
    const i = sessions.list.findIndex(function (s) { return s.id === info.id; });
    const s = { id: info.id, title: info.title, createdAt: info.time && info.time.created };
    if (i < 0) sessions.list.unshift(s); else sessions.list[i].title = info.title;
    sessions.render();
  },
  render: function () {
    sessionSel.textContent = "";
    sessions.list.filter(function (s) { return !s.parentId && !s.parentID; }).forEach(function (s) {
      const o = el("option", null, s.title || s.id);
      o.value = s.id;
      o.selected = s.id === state.session;
      sessionSel.appendChild(o);
    });
    sessionSel.disabled = sessionSel.options.length < 2;
  }
};

export function initSessions() {
  sessionSel.addEventListener("change", function () {
    location.search = "?session=" + encodeURIComponent(sessionSel.value);
  });
  $("new-session").addEventListener("click", function (e) {
    const b = e.currentTarget; b.disabled = true;
    call("POST", api + "/sessions", {}).then(function (body) {
      location.search = "?session=" + encodeURIComponent(body.session.id);
    }, function (err) { b.disabled = false; errEl.textContent = err.message; });
  });
}

export function loadModels() {
  return call("GET", api + "/models").then(function (body) {
    const models = body.models || [];
    if (!models.length) return;
    modelSel.textContent = "";
    models.forEach(function (m) {
      const o = el("option", null, m.name && m.name !== m.id ? m.name + " (" + m.id + ")" : m.id);
      o.value = m.id;
      o.selected = m.id === body.current;
      modelSel.appendChild(o);
    });
    modelSel.disabled = false;
  }, function () {});
}
