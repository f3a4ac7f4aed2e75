// Reading the conversation (GET messages) and following it live: server-sent events, see
// docs/conversation.md. The workbench (workbench.js) hears of both through document events:
// doce:loaded and doce:event.
import { $, call } from "../common.js";
import { api, state, q, setStatus, setBusy } from "./page.js";
import { dropServerRendered, clearMessages, updateInfo, updatePart, appendDelta, removePart, removeMessage } from "./render.js";
import { showPermission, showQuestion, removeRequest, clearRequests } from "./requests.js";
import { showRevert, pendingMessage, undone } from "./revert.js";
import { sessions } from "./sessions.js";
import { files } from "./files.js";

const form = $("composer");
let cursor = "";      // the id of the last event the shown conversation contains
let stream = null;
let queued = null;    // events that arrive while the conversation is re-read after a reset
let retryTimer = null;

export function load() {
  clearTimeout(retryTimer);
  return call("GET", q("/messages")).then(function (body) {
    state.session = body.sessionId || state.session;
    if ((body.messages || []).length || body.revert) dropServerRendered();
    clearMessages();
    clearRequests();
    (body.messages || []).forEach(function (msg) {
      updateInfo(msg.info);
      (msg.parts || []).forEach(updatePart);
    });
    (body.permissions || []).forEach(showPermission);
    (body.questions || []).forEach(showQuestion);
    showRevert(body.revert);
    const st = body.status && (body.status.type || body.status);
    setBusy(st === "busy" || st === "retry");
    cursor = body.cursor || "";
    form.hidden = false;
    state.started = true;
    document.dispatchEvent(new CustomEvent("doce:loaded", { detail: { session: state.session, api: api } }));
    return body;
  }, function (err) {
    if (err.status === 503 || err.status === 0 || err.status === 502) {
      // doce is starting the workspace (ProjectEnsureRunning): say so and ask again.
      setStatus(err.status === 503 ? err.message : "Reconnecting…");
      retryTimer = setTimeout(load, 2000);
    } else if (err.status === 409) {
      setStatus("The setup has not finished yet.");
    } else {
      setStatus(err.message);
    }
    throw err;
  });
}

function seqOf(id) {
  const i = (id || "").indexOf(".");
  return i < 0 ? null : { epoch: id.slice(0, i), seq: Number(id.slice(i + 1)) };
}
// after says whether event id comes after the conversation's cursor.
function after(id) {
  const a = seqOf(id), c = seqOf(cursor);
  if (!a || !c || a.epoch !== c.epoch) return true;
  return a.seq > c.seq;
}

const HANDLERS = {
  "message.updated": function (d) { if (!undone(d.info.id)) updateInfo(d.info); },
  "message.removed": function (d) { removeMessage(d.messageID); },
  "message.part.updated": function (d) { if (!undone(d.part.messageID)) updatePart(d.part); },
  "message.part.delta": function (d) { if (!undone(d.messageID)) appendDelta(d); },
  "message.part.removed": function (d) { removePart(d); },
  "session.status": function (d) { const t = d.status && d.status.type; setBusy(t === "busy" || t === "retry"); if (t === "retry") setStatus("The provider did not answer; retrying" + (d.status.message ? ": " + d.status.message : "") + "…"); },
  "session.idle": function () { setBusy(false); },
  "session.error": function (d) { if (d.error && d.error.name !== "MessageAbortedError") setStatus("The agent stopped: " + (d.error.message || d.error.name)); },
  "permission.asked": function (d) { showPermission(d); },
  "permission.replied": function (d) { removeRequest(d.requestID); },
  "question.asked": function (d) { showQuestion(d); },
  "question.replied": function (d) { removeRequest(d.requestID); },
  "question.rejected": function (d) { removeRequest(d.requestID); },
  "file.edited": function (d) { files.edited(d.file); }
};
const SESSIONLESS = { "file.edited": true };

function onEvent(e) {
  if (queued) { queued.push(e); return; }
  if (e.lastEventId && !after(e.lastEventId)) return; // already in what GET messages showed
  if (e.lastEventId) cursor = e.lastEventId;
  let d;
  try { d = JSON.parse(e.data); } catch (x) { return; }
  // The review, the todo list and the terminals (workbench.js) follow some events too.
  document.dispatchEvent(new CustomEvent("doce:event", { detail: { type: e.type, data: d, current: !d.sessionID || d.sessionID === state.session } }));
  if (!SESSIONLESS[e.type] && d.sessionID && d.sessionID !== state.session) {
    if (e.type === "session.created" || e.type === "session.updated") sessions.seen(d.info);
    return;
  }
  if (e.type === "session.created" || e.type === "session.updated") {
    sessions.seen(d.info);
    // An undo or restore made elsewhere (another tab, the API): re-read the conversation.
    const rev = (d.info && d.info.revert && d.info.revert.messageID) || "";
    if (state.started && rev !== pendingMessage()) {
      if (!rev) showRevert(null); // the next prompt's messages show at once
      load();
    }
    return;
  }
  const h = HANDLERS[e.type];
  if (h) h(d);
}

export function connect() {
  if (stream) stream.close();
  stream = new EventSource(q("/stream") + (q("/stream").indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(cursor));
  Object.keys(HANDLERS).concat(["session.created", "session.updated", "session.deleted", "session.compacted", "todo.updated", "pty.exited"]).forEach(function (t) {
    stream.addEventListener(t, onEvent);
  });
  stream.addEventListener("reset", function () {
    // The stream cannot resume from where this page is: re-read the conversation, then go
    // on with the events after what it contains.
    queued = [];
    load().then(function () {
      const q2 = queued; queued = null;
      q2.forEach(onEvent);
    }, function () { queued = null; });
  });
  stream.addEventListener("workspace.status", function (e) {
    const d = JSON.parse(e.data);
    if (d.state === "unavailable") setStatus("The workspace is not answering; doce is starting it again…");
    else setBusy();
  });
  stream.onopen = function () { if (state.started) setBusy(); };
  stream.onerror = function () {
    if (stream.readyState === EventSource.CONNECTING) setStatus("Reconnecting…"); // EventSource resumes by itself
  };
}
