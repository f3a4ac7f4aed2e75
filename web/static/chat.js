// The project page's conversation with the agent, its files and its sessions. The server
// renders the page; this script reads the conversation (GET messages), follows it live
// (server-sent events, see docs/conversation.md) and sends what the user does.
//
// Everything the agent says or does is untrusted text: it is only ever put in the page as
// text (textContent, createTextNode), never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("workspace");
  if (!root || !window.fetch || !window.EventSource) return;

  var api = root.dataset.api;
  var call = window.doce.call, el = window.doce.el;
  var $ = function (id) { return document.getElementById(id); };
  var conv = $("conversation"), statusEl = $("agent-status"), requestsEl = $("requests");
  var form = $("composer"), input = $("message"), sendBtn = $("send"), stopBtn = $("stop");
  var errEl = $("composer-error"), announcer = $("announcer");
  var sessionSel = $("session"), modelSel = $("model");
  var params = new URLSearchParams(location.search);
  var session = params.get("session") || "";

  // The conversation as last known: messages by id, each with its parts by id.
  var messages = new Map();
  var cursor = "";      // the id of the last event the shown conversation contains
  var stream = null;
  var busy = false, sending = false, started = false;
  var queued = null;    // events that arrive while the conversation is re-read after a reset

  function setStatus(text) { statusEl.textContent = text; }

  function q(path) {
    var sep = path.indexOf("?") < 0 ? "?" : "&";
    return api + path + (session ? sep + "session=" + encodeURIComponent(session) : "");
  }


  // ---- rendering ----

  var COLLAPSE_CHARS = 600, COLLAPSE_LINES = 12;
  function isLong(s) { return s.length > COLLAPSE_CHARS || s.split("\n").length > COLLAPSE_LINES; }

  // What a tool call did, in a few words: the command it ran, the file it touched.
  function toolSummary(part) {
    var st = part.state || {}, inp = st.input || {};
    var file = inp.filePath || inp.path || inp.file;
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

  var STATUS_TEXT = { pending: "pending", running: "running", completed: "done", error: "failed" };

  function renderPart(part, node) {
    node.textContent = "";
    node.className = "part " + part.type;
    switch (part.type) {
      case "text":
        if (part.synthetic) { node.hidden = true; return; }
        node.hidden = false;
        node.appendChild(document.createTextNode(part.text || ""));
        return;
      case "reasoning":
        var d = el("details"); d.appendChild(el("summary", null, "Thinking"));
        d.appendChild(el("div", "text", part.text || ""));
        node.appendChild(d);
        return;
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
    var st = part.state || {};
    var d = el("details", "tool");
    var sum = el("summary");
    sum.appendChild(el("span", "badge " + (st.status || ""), STATUS_TEXT[st.status] || st.status || ""));
    sum.appendChild(document.createTextNode(" " + toolSummary(part)));
    d.appendChild(sum);
    var input = st.input && Object.keys(st.input).length ? JSON.stringify(st.input, null, 2) : "";
    var out = st.status === "error" ? (st.error || "") : (st.output || "");
    if (input) { d.appendChild(el("h4", null, "Input")); d.appendChild(el("pre", null, input)); }
    if (out) { d.appendChild(el("h4", null, st.status === "error" ? "Error" : "Output")); d.appendChild(el("pre", st.status === "error" ? "error" : null, out)); }
    // Short results show at once; long ones wait for a click. A user's choice is kept.
    var prev = node.querySelector("details.tool");
    d.open = prev && prev.dataset.toggled ? prev.open : (out !== "" && !isLong(out + input)) || st.status === "error";
    if (prev && prev.dataset.toggled) d.dataset.toggled = "1";
    d.addEventListener("toggle", function () { d.dataset.toggled = "1"; });
    node.appendChild(d);
  }

  // dropServerRendered removes what the server rendered (the first prompt, or the conversation
  // as the page was made) once the live conversation has something to show instead.
  function dropServerRendered() {
    conv.querySelectorAll("[data-first-prompt], [data-server]").forEach(function (n) { n.remove(); });
  }

  function messageNode(info) {
    var m = messages.get(info.id);
    if (m) return m;
    dropServerRendered();
    var li = el("li", "msg " + info.role);
    li.dataset.messageId = info.id;
    li.appendChild(el("h3", "who", info.role === "user" ? "You" : "Agent"));
    var body = el("div", "parts"); li.appendChild(body);
    var err = el("p", "error"); err.hidden = true; li.appendChild(err);
    m = { info: info, parts: new Map(), li: li, body: body, err: err };
    messages.set(info.id, m);
    // Messages keep their order by id (OpenCode's ids grow with time).
    var next = null;
    for (var n = conv.firstElementChild; n; n = n.nextElementSibling) {
      if (n.dataset.messageId && n.dataset.messageId > info.id) { next = n; break; }
    }
    conv.insertBefore(li, next);
    return m;
  }

  // userActions gives a user message its "Undo from here" and "Changes" buttons: undo rolls the
  // files and the conversation back to before it, changes shows what its turn changed.
  function userActions(m) {
    if (m.actions || m.info.role !== "user") return;
    var p = el("p", "msg-actions");
    var undo = el("button", "link undo", "Undo from here");
    undo.type = "button";
    undo.addEventListener("click", function () { revert(m.info.id, undo); });
    var changes = el("button", "link turn-changes", "Changes");
    changes.type = "button";
    changes.addEventListener("click", function () {
      document.dispatchEvent(new CustomEvent("doce:turn-changes", { detail: { messageId: m.info.id, session: session } }));
    });
    p.appendChild(undo); p.appendChild(document.createTextNode(" · ")); p.appendChild(changes);
    m.actions = p;
    m.li.insertBefore(p, m.body);
  }

  function updateInfo(info) {
    var m = messageNode(info);
    var wasDone = m.info.time && m.info.time.completed;
    if (m.info.role !== info.role) { // made for a part that came before its message
      m.li.className = "msg " + info.role;
      m.li.firstChild.textContent = info.role === "user" ? "You" : "Agent";
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
    if (info.role === "assistant" && info.time && info.time.completed && !wasDone && started) {
      announce("Agent: " + textOf(m));
    }
  }

  function textOf(m) {
    var out = [];
    m.parts.forEach(function (p) { if (p.part.type === "text" && !p.part.synthetic) out.push(p.part.text || ""); });
    return out.join("\n").slice(0, 500);
  }

  function updatePart(part) {
    var m = messages.get(part.messageID) || messageNode({ id: part.messageID, role: "assistant" });
    var p = m.parts.get(part.id);
    if (!p) {
      p = { part: part, node: el("div") };
      m.parts.set(part.id, p);
      var next = null;
      for (var n = m.body.firstElementChild; n; n = n.nextElementSibling) {
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
  function appendDelta(d) {
    var m = messages.get(d.messageID);
    var p = m && m.parts.get(d.partID);
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

  function removePart(d) {
    var m = messages.get(d.messageID), p = m && m.parts.get(d.partID);
    if (p) { p.node.remove(); m.parts.delete(d.partID); }
  }

  function removeMessage(id) {
    var m = messages.get(id);
    if (m) { m.li.remove(); messages.delete(id); }
  }

  function announce(text) {
    announcer.textContent = "";
    // A change after a tick is what screen readers notice.
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function setBusy(b) {
    busy = b;
    stopBtn.disabled = !b;
    conv.setAttribute("aria-busy", b ? "true" : "false");
    if (b) setStatus("The agent is working…");
    else setStatus("The agent is waiting for your message.");
  }

  // ---- permissions and questions ----

  var requests = new Map();

  function removeRequest(id) {
    var r = requests.get(id);
    if (r) { r.remove(); requests.delete(id); }
  }

  function requestError(card, err) {
    var p = card.querySelector(".error") || card.appendChild(el("p", "error"));
    p.setAttribute("role", "alert");
    p.textContent = err.message;
    card.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
  }

  function showPermission(perm) {
    if (perm.sessionID !== session || requests.has(perm.id)) return;
    var card = el("div", "request permission");
    card.setAttribute("role", "group");
    var title = el("h3", null, "The agent asks for permission");
    title.id = "req-" + perm.id;
    card.setAttribute("aria-labelledby", title.id);
    card.appendChild(title);
    card.appendChild(el("p", null, "To use " + perm.permission + (perm.patterns && perm.patterns.length ? " on " + perm.patterns.join(", ") : "") + "."));
    [["once", "Allow once"], ["always", "Always allow"], ["reject", "Reject"]].forEach(function (r) {
      var b = el("button", r[0] === "reject" ? "secondary" : null, r[1]);
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

  function showQuestion(qn) {
    if (qn.sessionID !== session || requests.has(qn.id)) return;
    var card = el("form", "request question");
    var title = el("h3", null, "The agent asks");
    title.id = "req-" + qn.id;
    card.setAttribute("aria-labelledby", title.id);
    card.appendChild(title);
    (qn.questions || []).forEach(function (item, i) {
      var fs = el("fieldset");
      fs.appendChild(el("legend", null, (item.header ? item.header + ": " : "") + item.question));
      (item.options || []).forEach(function (o, j) {
        var id = "q-" + qn.id + "-" + i + "-" + j;
        var lab = el("label", "check");
        var box = el("input");
        box.type = item.multiple ? "checkbox" : "radio";
        box.name = "q" + i; box.value = o.label; box.id = id;
        lab.htmlFor = id;
        lab.appendChild(box);
        lab.appendChild(document.createTextNode(" " + o.label + (o.description ? " — " + o.description : "")));
        fs.appendChild(lab);
      });
      if (item.custom !== false) {
        var cid = "q-" + qn.id + "-" + i + "-own";
        var cl = el("label", null, "Or answer in your words"); cl.htmlFor = cid;
        var ci = el("input"); ci.type = "text"; ci.id = cid; ci.name = "q" + i + "-own";
        fs.appendChild(cl); fs.appendChild(ci);
      }
      card.appendChild(fs);
    });
    var send = el("button", null, "Answer"); send.type = "submit";
    var reject = el("button", "secondary", "Decline"); reject.type = "button";
    card.appendChild(send); card.appendChild(reject);
    function done(body) {
      card.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
      call("POST", api + "/questions/" + encodeURIComponent(qn.id), body)
        .then(function () { removeRequest(qn.id); input.focus(); },
              function (err) { if (err.status === 409 || err.status === 404) removeRequest(qn.id); else requestError(card, err); });
    }
    card.addEventListener("submit", function (e) {
      e.preventDefault(); e.stopPropagation();
      var answers = (qn.questions || []).map(function (item, i) {
        var picked = Array.prototype.map.call(card.querySelectorAll('input[name="q' + i + '"]:checked'), function (b) { return b.value; });
        var own = card.querySelector('input[name="q' + i + '-own"]');
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

  // ---- loading and following the conversation ----

  function clear() {
    messages.forEach(function (m) { m.li.remove(); });
    messages.clear();
    requests.forEach(function (r) { r.remove(); });
    requests.clear();
  }

  var retryTimer = null;
  function load() {
    clearTimeout(retryTimer);
    return call("GET", q("/messages")).then(function (body) {
      session = body.sessionId || session;
      if ((body.messages || []).length || body.revert) dropServerRendered();
      clear();
      (body.messages || []).forEach(function (msg) {
        updateInfo(msg.info);
        (msg.parts || []).forEach(updatePart);
      });
      (body.permissions || []).forEach(showPermission);
      (body.questions || []).forEach(showQuestion);
      showRevert(body.revert);
      var st = body.status && (body.status.type || body.status);
      setBusy(st === "busy" || st === "retry");
      cursor = body.cursor || "";
      form.hidden = false;
      started = true;
      document.dispatchEvent(new CustomEvent("doce:loaded", { detail: { session: session, api: api } }));
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
    var i = (id || "").indexOf(".");
    return i < 0 ? null : { epoch: id.slice(0, i), seq: Number(id.slice(i + 1)) };
  }
  // after says whether event id comes after the conversation's cursor.
  function after(id) {
    var a = seqOf(id), c = seqOf(cursor);
    if (!a || !c || a.epoch !== c.epoch) return true;
    return a.seq > c.seq;
  }

  var HANDLERS = {
    "message.updated": function (d) { if (!undone(d.info.id)) updateInfo(d.info); },
    "message.removed": function (d) { removeMessage(d.messageID); },
    "message.part.updated": function (d) { if (!undone(d.part.messageID)) updatePart(d.part); },
    "message.part.delta": function (d) { if (!undone(d.messageID)) appendDelta(d); },
    "message.part.removed": removePart,
    "session.status": function (d) { var t = d.status && d.status.type; setBusy(t === "busy" || t === "retry"); if (t === "retry") setStatus("The provider did not answer; retrying" + (d.status.message ? ": " + d.status.message : "") + "…"); },
    "session.idle": function () { setBusy(false); },
    "session.error": function (d) { if (d.error && d.error.name !== "MessageAbortedError") setStatus("The agent stopped: " + (d.error.message || d.error.name)); },
    "permission.asked": showPermission,
    "permission.replied": function (d) { removeRequest(d.requestID); },
    "question.asked": showQuestion,
    "question.replied": function (d) { removeRequest(d.requestID); },
    "question.rejected": function (d) { removeRequest(d.requestID); },
    "file.edited": function (d) { files.edited(d.file); }
  };
  var SESSIONLESS = { "file.edited": true };

  function onEvent(e) {
    if (queued) { queued.push(e); return; }
    if (e.lastEventId && !after(e.lastEventId)) return; // already in what GET messages showed
    if (e.lastEventId) cursor = e.lastEventId;
    var d;
    try { d = JSON.parse(e.data); } catch (x) { return; }
    // The review, the todo list and the terminals (workbench.js) follow some events too.
    document.dispatchEvent(new CustomEvent("doce:event", { detail: { type: e.type, data: d, current: !d.sessionID || d.sessionID === session } }));
    if (!SESSIONLESS[e.type] && d.sessionID && d.sessionID !== session) {
      if (e.type === "session.created" || e.type === "session.updated") sessions.seen(d.info);
      return;
    }
    if (e.type === "session.created" || e.type === "session.updated") {
      sessions.seen(d.info);
      // An undo or restore made elsewhere (another tab, the API): re-read the conversation.
      var rev = (d.info && d.info.revert && d.info.revert.messageID) || "";
      if (started && rev !== ((pendingRevert && pendingRevert.messageId) || "")) {
        if (!rev) showRevert(null); // the next prompt's messages show at once
        load();
      }
      return;
    }
    var h = HANDLERS[e.type];
    if (h) h(d);
  }

  function connect() {
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
        var q2 = queued; queued = null;
        q2.forEach(onEvent);
      }, function () { queued = null; });
    });
    stream.addEventListener("workspace.status", function (e) {
      var d = JSON.parse(e.data);
      if (d.state === "unavailable") setStatus("The workspace is not answering; doce is starting it again…");
      else setBusy(busy);
    });
    stream.onopen = function () { if (started) setBusy(busy); };
    stream.onerror = function () {
      if (stream.readyState === EventSource.CONNECTING) setStatus("Reconnecting…"); // EventSource resumes by itself
    };
  }

  // ---- undo and restore ----

  var dock = $("revert-dock"), pendingRevert = null;

  // showRevert shows the pending undo (or none): "N messages rolled back · Restore".
  function showRevert(rev) {
    pendingRevert = rev || null;
    dock.hidden = !rev;
    if (!rev) return;
    $("revert-count").textContent = rev.messages === 1 ? "1 message rolled back" : rev.messages + " messages rolled back";
  }

  // undone says whether message id is hidden by the pending undo: OpenCode keeps such messages
  // until the next prompt, and a late event about one must not bring it back to the page.
  function undone(id) { return !!(pendingRevert && id && id >= pendingRevert.messageId); }

  function revert(messageId, btn) {
    btn.disabled = true;
    errEl.textContent = "";
    setStatus("Undoing…");
    call("POST", api + "/revert", { messageId: messageId, session: session }).then(function () {
      return load();
    }).then(function () {
      // The undone prompt comes back into the composer, to edit and send again.
      if (pendingRevert && pendingRevert.prompt && !input.value.trim()) input.value = pendingRevert.prompt;
      input.focus();
      announce("Undone. " + $("revert-count").textContent + ".");
    }, function (err) {
      btn.disabled = false;
      errEl.textContent = err.message;
      setBusy(busy);
    });
  }

  $("restore").addEventListener("click", function (e) {
    var b = e.currentTarget, prompt = pendingRevert && pendingRevert.prompt;
    b.disabled = true;
    errEl.textContent = "";
    call("POST", api + "/unrevert", { session: session }).then(function () {
      if (prompt && input.value === prompt) input.value = "";
      return load();
    }).then(function () {
      announce("Restored.");
    }, function (err) { errEl.textContent = err.message; }).then(function () { b.disabled = false; });
  });

  // ---- sending ----

  function send() {
    var text = input.value.trim();
    if (sending) return;
    if (!text) { errEl.textContent = "Write a message first."; input.focus(); return; }
    sending = true;
    errEl.textContent = "";
    input.disabled = true; sendBtn.disabled = true;
    sendBtn.setAttribute("aria-busy", "true");
    var body = { text: text };
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

  // ---- sessions and models ----

  var sessions = {
    list: [],
    load: function () {
      return call("GET", api + "/sessions").then(function (body) {
        if (!session) session = body.current;
        sessions.list = body.sessions || [];
        sessions.render();
      }, function () {});
    },
    seen: function (info) {
      if (!info || info.parentID) return; // sub-agents' sessions belong to their parent
      var i = sessions.list.findIndex(function (s) { return s.id === info.id; });
      var s = { id: info.id, title: info.title, createdAt: info.time && info.time.created };
      if (i < 0) sessions.list.unshift(s); else sessions.list[i].title = info.title;
      sessions.render();
    },
    render: function () {
      sessionSel.textContent = "";
      sessions.list.filter(function (s) { return !s.parentId && !s.parentID; }).forEach(function (s) {
        var o = el("option", null, s.title || s.id);
        o.value = s.id;
        o.selected = s.id === session;
        sessionSel.appendChild(o);
      });
      sessionSel.disabled = sessionSel.options.length < 2;
    }
  };
  sessionSel.addEventListener("change", function () {
    location.search = "?session=" + encodeURIComponent(sessionSel.value);
  });
  $("new-session").addEventListener("click", function (e) {
    var b = e.currentTarget; b.disabled = true;
    call("POST", api + "/sessions", {}).then(function (body) {
      location.search = "?session=" + encodeURIComponent(body.session.id);
    }, function (err) { b.disabled = false; errEl.textContent = err.message; });
  });

  function loadModels() {
    return call("GET", api + "/models").then(function (body) {
      var models = body.models || [];
      if (!models.length) return;
      modelSel.textContent = "";
      models.forEach(function (m) {
        var o = el("option", null, m.name && m.name !== m.id ? m.name + " (" + m.id + ")" : m.id);
        o.value = m.id;
        o.selected = m.id === body.current;
        modelSel.appendChild(o);
      });
      modelSel.disabled = false;
    }, function () {});
  }

  // ---- files ----

  var files = {
    box: $("files"), viewer: $("viewer"), open: null, shown: new Map(), timer: null,
    // list shows the folder dir inside container ul. An unchanged folder keeps its nodes, so a
    // refresh never takes away the button someone is clicking, their focus or open folders.
    list: function (dir, ul) {
      return call("GET", api + "/files?path=" + encodeURIComponent(dir)).then(function (body) {
        var entries = (body.entries || []).slice().sort(function (a, b) {
          return (a.type === b.type ? 0 : a.type === "directory" ? -1 : 1) || a.name.localeCompare(b.name);
        });
        var sig = JSON.stringify(entries.map(function (f) { return [f.name, f.type, !!f.ignored]; }));
        if (ul.dataset.sig === sig) { files.shown.set(dir, ul); return; }
        ul.dataset.sig = sig;
        ul.textContent = "";
        if (!entries.length) ul.appendChild(el("li", "note", "(empty)"));
        entries.forEach(function (f) { ul.appendChild(files.entry(f)); });
        files.shown.set(dir, ul);
      }, function (err) {
        delete ul.dataset.sig;
        ul.textContent = "";
        ul.appendChild(el("li", "error", err.message));
      });
    },
    entry: function (f) {
      var li = el("li");
      var b = el("button", "link file-entry" + (f.ignored ? " ignored" : ""), f.name + (f.type === "directory" ? "/" : ""));
      b.type = "button";
      b.dataset.path = f.path;
      li.appendChild(b);
      if (f.type === "directory") {
        b.setAttribute("aria-expanded", "false");
        var sub = el("ul"); sub.hidden = true; li.appendChild(sub);
        b.addEventListener("click", function () {
          var open = b.getAttribute("aria-expanded") !== "true";
          b.setAttribute("aria-expanded", String(open));
          sub.hidden = !open;
          if (open) files.list(f.path, sub); else files.shown.delete(f.path);
        });
      } else {
        b.addEventListener("click", function () { files.view(f.path, true); });
      }
      return li;
    },
    view: function (path, focus) {
      files.open = path;
      var title = $("viewer-path"), pre = $("viewer-content");
      files.viewer.hidden = false;
      title.textContent = path;
      return call("GET", api + "/files/content?path=" + encodeURIComponent(path)).then(function (body) {
        var f = body.file || {};
        pre.textContent = f.type === "text" ? f.content : "This file is not text" + (f.mimeType ? " (" + f.mimeType + ")" : "") + ": Download the project to get it.";
        if (f.truncated) pre.appendChild(el("span", "note", "\n… cut short: Download the project for the whole file."));
        if (focus) title.focus();
      }, function (err) { pre.textContent = err.message; });
    },
    refresh: function () {
      var top = files.box.querySelector("ul") || files.box.appendChild(el("ul", "tree"));
      files.shown.forEach(function (ul, dir) { if (dir !== "") files.list(dir, ul); });
      return files.list("", top);
    },
    // edited refreshes what shows a file the agent changed, once for a burst of edits.
    edited: function () {
      clearTimeout(files.timer);
      files.timer = setTimeout(function () {
        files.refresh();
        if (files.open) files.view(files.open, false);
      }, 300);
    }
  };
  $("files-refresh").addEventListener("click", function () { files.refresh(); });

  function start() {
    if (start.done) return;
    start.done = true;
    root.hidden = false;
    setStatus("Connecting to the workspace…");
    sessions.load().then(function () {
      return load();
    }).then(function () {
      connect();
      loadModels();
      files.refresh();
    }, function () {
      // load retries by itself while the workspace starts; connect once it answers.
      var wait = setInterval(function () { if (started) { clearInterval(wait); connect(); loadModels(); files.refresh(); } }, 500);
    });
  }
  if (!root.hidden) start();
  else document.addEventListener("doce:ready", start);
})();
