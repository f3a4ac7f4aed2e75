// The conversation on the page: messages, each with its parts (text, thinking, tool calls,
// edits), kept in the order OpenCode gives them.
//
// Everything the agent says or does is untrusted text: it is only ever put in the page as
// text (textContent, createTextNode), never as HTML.
import { $, el, clone } from "../common.js";
import { state, announce } from "./page.js";
import { revert } from "./revert.js";

const conv = $("conversation");

// The conversation as last known: messages by id, each with its parts by id.
const messages = new Map();

const COLLAPSE_CHARS = 600, COLLAPSE_LINES = 12;
function isLong(s) { return s.length > COLLAPSE_CHARS || s.split("\n").length > COLLAPSE_LINES; }

// What a tool call did, in a few words: the command it ran, the file it touched.
function toolSummary(part) {
  const st = part.state || {}, inp = st.input || {};
  let file = inp.filePath || inp.path || inp.file;
  // Paths inside the project read best relative to it (the workspace is /workspace).
  if (typeof file === "string" && file.indexOf("/workspace/") === 0) file = file.slice(11);
  switch (part.tool) {
    case "bash": return "Ran " + (inp.command || st.title || "a command");
    case "write": return "Wrote " + (file || "a file");
    case "edit": case "multiedit": return "Edited " + (file || "a file");
    case "patch": case "apply_patch": return "Patched " + (st.title || "files");
    case "read": return "Read " + (file || "a file");
    case "list": return "Listed " + (file || "a folder");
    case "grep": case "glob": return "Searched for " + (inp.pattern || "files");
    default: return (part.tool || "Tool") + (st.title ? ": " + st.title : "");
  }
}

const STATUS_TEXT = { pending: "pending", running: "running", completed: "done", error: "failed" };

function renderPart(part, node) {
  node.textContent = "";
  node.className = "part " + part.type;
  switch (part.type) {
    case "text":
      if (part.synthetic) { node.hidden = true; return; }
      node.hidden = false;
      node.appendChild(document.createTextNode(part.text || ""));
      return;
    case "reasoning": {
      const d = el("details"); d.appendChild(el("summary", null, "Thinking"));
      d.appendChild(el("div", "text", part.text || ""));
      node.appendChild(d);
      return;
    }
    case "tool":
      renderTool(part, node);
      return;
    case "patch":
      node.appendChild(el("p", "edit", "Changed " + (part.files || []).join(", ")));
      return;
    case "file":
      node.appendChild(el("p", "edit", "File: " + (part.filename || part.mime || "attachment")));
      return;
    default:
      node.hidden = true; // step-start, step-finish, snapshots: bookkeeping, not conversation
  }
}

function renderTool(part, node) {
  const st = part.state || {};
  const d = el("details", "tool");
  const sum = el("summary");
  sum.appendChild(el("span", "badge " + (st.status || ""), STATUS_TEXT[st.status] || st.status || ""));
  sum.appendChild(document.createTextNode(" " + toolSummary(part)));
  d.appendChild(sum);
  const input = st.input && Object.keys(st.input).length ? JSON.stringify(st.input, null, 2) : "";
  const out = st.status === "error" ? (st.error || "") : (st.output || "");
  if (input) { d.appendChild(el("h4", null, "Input")); d.appendChild(el("pre", null, input)); }
  if (out) { d.appendChild(el("h4", null, st.status === "error" ? "Error" : "Output")); d.appendChild(el("pre", st.status === "error" ? "error" : null, out)); }
  // Short results show at once; long ones wait for a click. A user's choice is kept.
  const prev = node.querySelector("details.tool");
  d.open = prev && prev.dataset.toggled ? prev.open : (out !== "" && !isLong(out + input)) || st.status === "error";
  if (prev && prev.dataset.toggled) d.dataset.toggled = "1";
  d.addEventListener("toggle", function () { d.dataset.toggled = "1"; });
  node.appendChild(d);
}

// dropServerRendered removes what the server rendered (the first prompt, or the conversation
// as the page was made) once the live conversation has something to show instead.
export function dropServerRendered() {
  conv.querySelectorAll("[data-first-prompt], [data-server]").forEach(function (n) { n.remove(); });
}

function who(role) { return role === "user" ? "You" : "Agent"; }

function messageNode(info) {
  let m = messages.get(info.id);
  if (m) return m;
  dropServerRendered();
  const li = clone("message-template");
  li.className = "msg " + info.role;
  li.dataset.messageId = info.id;
  m = { info: info, parts: new Map(), li: li, who: li.querySelector(".who"), body: li.querySelector(".parts"), err: li.querySelector(".error") };
  m.who.textContent = who(info.role);
  messages.set(info.id, m);
  // Messages keep their order by id (OpenCode's ids grow with time).
  let next = null;
  for (let n = conv.firstElementChild; n; n = n.nextElementSibling) {
    if (n.dataset.messageId && n.dataset.messageId > info.id) { next = n; break; }
  }
  conv.insertBefore(li, next);
  return m;
}

// userActions gives a user message its "Undo from here" and "Changes" buttons: undo rolls the
// files and the conversation back to before it, changes shows what its turn changed.
function userActions(m) {
  if (m.actions || m.info.role !== "user") return;
  const p = el("p", "msg-actions");
  const undo = el("button", "link undo", "Undo from here");
  undo.type = "button";
  undo.addEventListener("click", function () { revert(m.info.id, undo); });
  const changes = el("button", "link turn-changes", "Changes");
  changes.type = "button";
  changes.addEventListener("click", function () {
    document.dispatchEvent(new CustomEvent("doce:turn-changes", { detail: { messageId: m.info.id, session: state.session } }));
  });
  p.appendChild(undo); p.appendChild(document.createTextNode(" · ")); p.appendChild(changes);
  m.actions = p;
  m.li.insertBefore(p, m.body);
}

export function updateInfo(info) {
  const m = messageNode(info);
  const wasDone = m.info.time && m.info.time.completed;
  if (m.info.role !== info.role) { // made for a part that came before its message
    m.li.className = "msg " + info.role;
    m.who.textContent = who(info.role);
  }
  m.info = info;
  userActions(m);
  if (info.error && info.error.name !== "MessageAbortedError") {
    m.err.hidden = false;
    m.err.textContent = info.error.message || info.error.name;
  } else if (info.error) {
    m.err.hidden = false;
    m.err.textContent = "Stopped.";
  }
  if (info.role === "assistant" && info.time && info.time.completed && !wasDone && state.started) {
    announce("Agent: " + textOf(m));
  }
}

function textOf(m) {
  const out = [];
  m.parts.forEach(function (p) { if (p.part.type === "text" && !p.part.synthetic) out.push(p.part.text || ""); });
  return out.join("\n").slice(0, 500);
}

export function updatePart(part) {
  const m = messages.get(part.messageID) || messageNode({ id: part.messageID, role: "assistant" });
  let p = m.parts.get(part.id);
  if (!p) {
    p = { part: part, node: el("div") };
    m.parts.set(part.id, p);
    let next = null;
    for (let n = m.body.firstElementChild; n; n = n.nextElementSibling) {
      if (n.dataset.partId > part.id) { next = n; break; }
    }
    p.node.dataset.partId = part.id;
    m.body.insertBefore(p.node, next);
  }
  p.part = part;
  renderPart(part, p.node);
}

// appendDelta adds streamed text to a part, touching only its text node: this is the path
// every token takes, so it stays small.
export function appendDelta(d) {
  const m = messages.get(d.messageID);
  let p = m && m.parts.get(d.partID);
  if (!p) { // a delta before its part: make the part
    updatePart({ id: d.partID, messageID: d.messageID, sessionID: d.sessionID, type: "text", text: "" });
    p = messages.get(d.messageID).parts.get(d.partID);
  }
  p.part[d.field] = (p.part[d.field] || "") + d.delta;
  if (d.field !== "text") return;
  if (p.part.type === "text" && p.node.firstChild && p.node.firstChild.nodeType === 3) {
    p.node.firstChild.appendData(d.delta);
  } else {
    renderPart(p.part, p.node);
  }
}

export function removePart(d) {
  const m = messages.get(d.messageID), p = m && m.parts.get(d.partID);
  if (p) { p.node.remove(); m.parts.delete(d.partID); }
}

export function removeMessage(id) {
  const m = messages.get(id);
  if (m) { m.li.remove(); messages.delete(id); }
}

// clearMessages takes every message off the page, before the conversation is read again.
export function clearMessages() {
  messages.forEach(function (m) { m.li.remove(); });
  messages.clear();
}
