// The project page's workbench: the tabs beside the conversation (preview, review, files,
// terminal), the review of what the agent changed, terminals, the agent's todo list, managing
// sessions, and a mark in the tab's title when the agent needs the user while the tab is in the
// background. The conversation (chat/) tells this module what happens through
// document events: doce:loaded (the conversation was read), doce:event (a stream event),
// doce:turn-changes (the user asked for one turn's changes).
//
// What comes from the workspace (paths, patches, terminal output) is untrusted: it is put in
// the page as text only, and terminal output only through the terminal emulator.
import { $, el, call, debounce } from "./common.js";

const root = $("workspace");
const api = root.dataset.api;
let session = new URLSearchParams(location.search).get("session") || "";

// ---- tabs ----

const tabs = Array.prototype.slice.call(root.querySelectorAll('.tabs [role="tab"]'));
const onShow = {};
function select(tab, focus) {
  tabs.forEach(function (t) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  });
  if (focus) tab.focus();
  const f = onShow[tab.id];
  if (f) f();
}
tabs.forEach(function (t, i) {
  t.addEventListener("click", function () { select(t, false); });
  t.addEventListener("keydown", function (e) {
    const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (d) { e.preventDefault(); select(tabs[(i + d + tabs.length) % tabs.length], true); }
  });
});
// Without this script every panel shows; with it, one at a time.
select(tabs[0], false);
function shown(id) { return $(id).getAttribute("aria-selected") === "true"; }

// ---- git ----

// The Git tab pushes the work to the project's repository, pulls a branch of it into the
// workspace, and follows either until it ends (one runs at a time).
const git = {
  timer: null, edited: false, running: false, // running: a push or pull was running when last shown
  seen: {}, // the push and pull outcomes shown so far, to bring a new failure into view once
  // reveal scrolls a failure not shown before into view: the workbench scrolls on its own,
  // so the reason below a tall panel's forms would otherwise sit out of sight under "failed:".
  reveal: function (kind, outcome, node) {
    const key = outcome ? outcome.status + " " + outcome.at : "";
    if (git.seen[kind] === key) return;
    git.seen[kind] = key;
    if (outcome && outcome.status === "failed" && shown("tab-git")) node.scrollIntoView({ block: "nearest" });
  },
  load: function () {
    return call("GET", api + "/git").then(git.show, function (err) { $("git-error").textContent = err.message; });
  },
  // changes lists what a push would commit: the files changed since the last commit.
  changes: function () {
    const status = $("git-changes-status"), ul = $("git-changes");
    if (!status.textContent) status.textContent = "Reading the changes…";
    return call("GET", api + "/changes?base=head").then(function (body) {
      let files = body.files || [], add = 0, del = 0;
      ul.textContent = "";
      files.forEach(function (f) {
        add += f.additions || 0; del += f.deletions || 0;
        ul.appendChild(changedItem(f, function () { review.openAt(f.path); }));
      });
      status.textContent = !files.length ? "No changes since the last commit." :
        files.length + (files.length === 1 ? " file" : " files") + " changed since the last commit, +" + add + " −" + del + " lines. Open one to see its diff in Review.";
    }, function (err) { status.textContent = err.message; });
  },
  show: function (body) {
    const g = body.git, last = g.lastPush, status = $("git-status"), error = $("git-error");
    if (!git.edited) $("git-branch").value = g.branch;
    const a = $("git-pr-url"), pr = g.pullRequest;
    $("git-pr-link").hidden = !(pr && /^https?:\/\//.test(pr.url));
    if (!$("git-pr-link").hidden) { a.href = pr.url; a.textContent = "#" + pr.number + " on " + g.branch; }
    error.textContent = "";
    if (!last) status.textContent = "Not pushed yet.";
    else if (last.status === "running") status.textContent = "Pushing to " + g.branch + "…";
    else if (last.status === "done") status.textContent = "Pushed " + (last.commit || "").slice(0, 10) + " to " + g.branch + " (" + new Date(last.at).toLocaleString() + ").";
    else { status.textContent = "The last push to " + g.branch + " failed:"; error.textContent = last.error || ""; }
    const pull = g.lastPull, pstatus = $("git-pull-status"), perror = $("git-pull-error");
    perror.textContent = "";
    if (!pull) pstatus.textContent = "Not pulled yet.";
    else if (pull.status === "running") pstatus.textContent = "Pulling " + (pull.base || "the default branch") + "…";
    else if (pull.status === "done") pstatus.textContent = "Merged " + pull.base + " at " + (pull.commit || "").slice(0, 10) + " (" + new Date(pull.at).toLocaleString() + "). Then the workspace was " +
      pull.ahead + " commit" + (pull.ahead === 1 ? "" : "s") + " ahead of it and " + pull.behind + " behind.";
    else { pstatus.textContent = "The last pull of " + (pull.base || "the default branch") + " failed:"; perror.textContent = pull.error || ""; }
    git.reveal("push", last, error);
    git.reveal("pull", pull, perror);
    const running = (!!last && last.status === "running") || (!!pull && pull.status === "running");
    $("git-push-button").disabled = running;
    $("git-pull-button").disabled = running;
    clearTimeout(git.timer);
    if (running) git.timer = setTimeout(git.load, 1500);
    else if (git.running) git.changes(); // the push or pull committed what was changed
    git.running = running;
  }
};
if ($("git-push")) {
  onShow["tab-git"] = function () { git.load(); git.changes(); };
  $("git-branch").addEventListener("input", function () { git.edited = true; });
  $("git-push").addEventListener("submit", function (e) {
    e.preventDefault();
    const body = { branch: $("git-branch").value.trim(), message: $("git-message").value.trim() };
    if ($("git-pr").checked) body.pullRequest = { title: $("git-title").value.trim() };
    $("git-error").textContent = "";
    $("git-status").textContent = "Starting the push…";
    $("git-push-button").disabled = true;
    call("POST", api + "/git/push", body).then(function (res) { git.edited = false; git.show(res); }, function (err) {
      $("git-push-button").disabled = false;
      $("git-status").textContent = "";
      $("git-error").textContent = err.message;
    });
  });
  $("git-pull").addEventListener("submit", function (e) {
    e.preventDefault();
    $("git-pull-error").textContent = "";
    $("git-pull-status").textContent = "Starting the pull…";
    $("git-pull-button").disabled = true;
    call("POST", api + "/git/pull", { base: $("git-base").value.trim() }).then(git.show, function (err) {
      $("git-pull-button").disabled = false;
      $("git-pull-status").textContent = "";
      $("git-pull-error").textContent = err.message;
    });
  });
}

// ---- review ----

// changedItem is a changed file in a list: its status, its path as a button, its line counts.
function changedItem(f, open) {
  const li = el("li");
  const b = el("button", "link", f.path);
  b.type = "button";
  b.dataset.path = f.path;
  b.addEventListener("click", open);
  li.appendChild(el("span", "badge", f.status));
  li.appendChild(b);
  const n = el("span", "count");
  n.appendChild(el("span", "add", "+" + (f.additions || 0)));
  n.appendChild(document.createTextNode(" "));
  n.appendChild(el("span", "del", "−" + (f.deletions || 0)));
  li.appendChild(n);
  return li;
}

const review = {
  turn: null, // the user message whose turn is shown, or null for everything
  files: [], open: null, stale: true,
  load: function () {
    const status = $("review-status");
    const path = review.turn ? api + "/messages/" + encodeURIComponent(review.turn) + "/changes" + (session ? "?session=" + encodeURIComponent(session) : "") : api + "/changes";
    status.textContent = "Reading the changes…";
    review.stale = false;
    return call("GET", path).then(function (body) {
      review.files = body.files || [];
      $("review-scope").textContent = review.turn ? "What one turn changed." :
        body.base === "head" ? "Uncommitted changes (this workspace has no record of its starting point)." :
        "Everything the work changed since the project started.";
      $("review-all").hidden = !review.turn;
      status.textContent = review.files.length ? review.files.length + (review.files.length === 1 ? " file changed." : " files changed.") : "No changes.";
      review.render();
    }, function (err) { status.textContent = err.message; });
  },
  render: function () {
    const ul = $("review-files");
    ul.textContent = "";
    let still = false;
    review.files.forEach(function (f) {
      ul.appendChild(changedItem(f, function () { review.show(f, true); }));
      if (review.open === f.path) { still = true; review.show(f, false); }
    });
    if (!still) { review.open = null; $("review-diff").hidden = true; }
  },
  show: function (f, focus) {
    review.open = f.path;
    $("review-diff").hidden = false;
    $("review-path").textContent = f.path;
    $("review-note").textContent = f.binary ? "A binary file: no text diff to show. Download the project to get it." :
      f.truncated && f.patch ? "This diff is too large to show whole: it is cut short here. Download the project for the whole file." :
      f.truncated ? "No diff of this file to show here (too large, or not kept). Download the project for the whole file." : "";
    const pre = $("review-patch");
    pre.textContent = "";
    (f.patch || "").split("\n").forEach(function (line) {
      const c = line.indexOf("@@") === 0 ? "hunk" : line.indexOf("+++") === 0 || line.indexOf("---") === 0 || line.indexOf("diff ") === 0 || line.indexOf("index ") === 0 || line.indexOf("Index: ") === 0 || line.indexOf("===") === 0 ? "meta" :
        line[0] === "+" ? "add" : line[0] === "-" ? "del" : null;
      pre.appendChild(el("span", c, line || " "));
    });
    pre.hidden = !f.patch;
    if (focus) $("review-path").focus();
  },
  // openAt shows everything the work changed in the Review tab, opened at path.
  openAt: function (path) {
    review.turn = null;
    review.open = path;
    review.stale = false; // read once, below, not again on showing the tab
    select($("tab-review"), false);
    review.load().then(function () { if (review.open === path) $("review-path").focus(); });
  }
};
onShow["tab-review"] = function () { if (review.stale) review.load(); };
// The agent going idle or a file being edited makes the review stale: read it again, once a
// burst of edits is over, when it is in view; later, when it is shown, otherwise.
const reviewChanged = debounce(function () {
  if (shown("tab-review")) review.load(); else review.stale = true;
  if ($("tab-git") && shown("tab-git")) git.changes();
}, 800);
$("review-refresh").addEventListener("click", function () { review.load(); });
$("review-all").addEventListener("click", function () { review.turn = null; review.load(); });
document.addEventListener("doce:turn-changes", function (e) {
  review.turn = e.detail.messageId;
  session = e.detail.session || session;
  select($("tab-review"), true);
  review.load();
});

// ---- todos ----

function showTodos(todos) {
  const box = $("todos"), ol = $("todo-list");
  ol.textContent = "";
  (todos || []).forEach(function (t) {
    const li = el("li", t.status, t.content);
    if (t.status === "completed") li.appendChild(el("span", "visually-hidden", " (done)"));
    if (t.status === "in_progress") li.appendChild(el("span", "visually-hidden", " (in progress)"));
    ol.appendChild(li);
  });
  box.hidden = !(todos && todos.length);
}

// ---- a mark in the title while the tab is in the background ----

let baseTitle = document.title, busySince = 0;
const LONG_TURN = 10000;
function mark(why) {
  if (!document.hidden) return;
  document.title = "● " + why + " · " + baseTitle;
}
document.addEventListener("visibilitychange", function () { if (!document.hidden) document.title = baseTitle; });

// ---- sessions ----

let toolsStatus = $("session-tools-status"), compacting = false;
function goTo(id) { location.search = "?session=" + encodeURIComponent(id); }
$("fork-session").addEventListener("click", function (e) {
  const b = e.currentTarget; b.disabled = true;
  call("POST", api + "/sessions/" + encodeURIComponent(session) + "/fork", {}).then(function (body) { goTo(body.session.id); },
    function (err) { b.disabled = false; toolsStatus.textContent = err.message; });
});
$("delete-session").addEventListener("click", function (e) {
  if (!window.confirm("Delete this session and its messages? Its file changes stay.")) return;
  const b = e.currentTarget; b.disabled = true;
  call("DELETE", api + "/sessions/" + encodeURIComponent(session)).then(function () { location.search = ""; },
    function (err) { b.disabled = false; toolsStatus.textContent = err.message; });
});
$("compact-session").addEventListener("click", function (e) {
  const b = e.currentTarget; b.disabled = true;
  call("POST", api + "/sessions/" + encodeURIComponent(session) + "/compact").then(function () {
    compacting = true;
    toolsStatus.textContent = "Compacting the session's history…";
    b.setAttribute("aria-busy", "true");
  }, function (err) { b.disabled = false; toolsStatus.textContent = err.message; });
});
function compacted(ok) {
  if (!compacting) return;
  compacting = false;
  const b = $("compact-session");
  b.disabled = false; b.removeAttribute("aria-busy");
  toolsStatus.textContent = ok ? "Compacted: the agent goes on from a summary of the history." : "The compaction stopped.";
}
$("rename-session").addEventListener("submit", function (e) {
  e.preventDefault(); e.stopPropagation();
  const title = $("session-title").value.trim();
  call("PATCH", api + "/sessions/" + encodeURIComponent(session), { title: title }).then(function () {
    toolsStatus.textContent = "Renamed.";
  }, function (err) { toolsStatus.textContent = err.message; });
});

// ---- terminals ----

let terms = new Map(), current = null;
const termStatus = $("term-status");
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + api + "/terminals/";

function termTab(t) {
  const wrap = el("span", "term-tab");
  const b = el("button", null, t.title || "Terminal");
  b.type = "button";
  b.setAttribute("role", "tab");
  b.dataset.terminal = t.id;
  b.addEventListener("click", function () { showTerm(t.id); });
  const x = el("button", "close", "×");
  x.type = "button";
  x.setAttribute("aria-label", "Close " + (t.title || "terminal"));
  x.addEventListener("click", function () { closeTerm(t.id); });
  wrap.appendChild(b); wrap.appendChild(x);
  $("term-tabs").appendChild(wrap);
  return { tab: b, wrap: wrap };
}

// openTerm attaches an emulator to terminal t: OpenCode's protocol passes through doce
// unchanged, so this keeps the cursor (UTF-16 units of output seen, which is what a JS
// string's length counts) and reconnects from it.
function openTerm(t) {
  if (terms.has(t.id) || !window.Terminal) return terms.get(t.id);
  const screen = el("div", "term-screen");
  screen.dataset.terminal = t.id;
  $("term-screens").appendChild(screen);
  const term = new window.Terminal({ cursorBlink: true, convertEol: false, fontSize: 14, scrollback: 5000 });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  const s = { id: t.id, term: term, fit: fit, screen: screen, cursor: 0, ws: null, ended: false, size: "", pending: "" };
  const tab = termTab(t);
  s.tab = tab.tab; s.wrap = tab.wrap;
  terms.set(t.id, s);
  // What is typed while the socket (re)connects waits for it, as a shell's own input would.
  term.onData(function (d) {
    if (s.ws && s.ws.readyState === 1) s.ws.send(d);
    else if (!s.ended) s.pending += d;
  });
  connectTerm(s);
  return s;
}

function connectTerm(s) {
  const ws = new WebSocket(wsBase + encodeURIComponent(s.id) + "/connect?cursor=" + s.cursor);
  ws.binaryType = "arraybuffer";
  s.ws = ws;
  ws.onmessage = function (e) {
    if (typeof e.data === "string") {
      s.term.write(e.data);
      s.cursor += e.data.length;
      return;
    }
    const b = new Uint8Array(e.data);
    if (b.length && b[0] === 0) { // OpenCode's cursor frame: the count of output so far
      try { s.cursor = JSON.parse(new TextDecoder().decode(b.subarray(1))).cursor; } catch (x) { /* keep ours */ }
      return;
    }
    s.term.write(b);
  };
  ws.onopen = function () {
    termStatus.textContent = "";
    s.screen.dataset.connected = "true";
    if (s.pending) { ws.send(s.pending); s.pending = ""; }
    resizeTerm(s, true);
  };
  ws.onclose = function (e) {
    if (s.ws !== ws) return;
    delete s.screen.dataset.connected;
    if (e.code === 1000 || e.code === 4404 || s.ended) {
      s.ended = true;
      s.term.write("\r\n[the shell has ended]\r\n");
      return;
    }
    termStatus.textContent = "The terminal's connection dropped; reconnecting…";
    setTimeout(function () { if (!s.ended && terms.has(s.id)) connectTerm(s); }, 1000);
  };
}

function showTerm(id) {
  current = id;
  terms.forEach(function (s) {
    const on = s.id === id;
    s.screen.hidden = !on;
    s.tab.setAttribute("aria-selected", String(on));
  });
  const s = terms.get(id);
  if (s) { resizeTerm(s, false); s.term.focus(); }
}

// resizeTerm fits the emulator to its box and tells the workspace the size, when it changed.
function resizeTerm(s, force) {
  if (s.screen.hidden || !shown("tab-terminal")) return;
  try { s.fit.fit(); } catch (x) { return; }
  const size = s.term.rows + "x" + s.term.cols;
  if (size === s.size && !force) return;
  s.size = size;
  call("PUT", api + "/terminals/" + encodeURIComponent(s.id), { rows: s.term.rows, cols: s.term.cols }).catch(function () {});
}
window.addEventListener("resize", debounce(function () { terms.forEach(function (s) { resizeTerm(s, false); }); }, 150));

function newTerm() {
  const b = $("term-new"); b.disabled = true;
  termStatus.textContent = "Starting a terminal…";
  return call("POST", api + "/terminals", { title: "Terminal " + (terms.size + 1) }).then(function (body) {
    termStatus.textContent = "";
    openTerm(body.terminal);
    showTerm(body.terminal.id);
  }).catch(function (err) {
    // The request's error, or the emulator failing to open: said, never silent.
    termStatus.textContent = err.message || String(err);
  }).then(function () { b.disabled = false; });
}

function closeTerm(id) {
  const s = terms.get(id);
  if (!s) return;
  s.ended = true;
  if (s.ws) s.ws.close(1000);
  s.term.dispose(); s.screen.remove(); s.wrap.remove();
  terms.delete(id);
  call("DELETE", api + "/terminals/" + encodeURIComponent(id)).catch(function () {});
  if (current === id) {
    const next = terms.keys().next();
    if (!next.done) showTerm(next.value);
  }
}

let termsLoaded = false;
onShow["tab-terminal"] = function () {
  if (!window.Terminal) { termStatus.textContent = "The terminal emulator did not load."; return; }
  if (termsLoaded) { if (current) showTerm(current); return; }
  termsLoaded = true;
  call("GET", api + "/terminals").then(function (body) {
    const running = (body.terminals || []).filter(function (t) { return t.status === "running"; });
    if (!running.length) return newTerm();
    running.forEach(openTerm);
    showTerm(running[0].id);
  }, function (err) { termsLoaded = false; termStatus.textContent = err.message; });
};
$("term-new").addEventListener("click", newTerm);

// ---- following the conversation ----

document.addEventListener("doce:loaded", function (e) {
  session = e.detail.session || session;
  // A reload follows an undo, a redo or another session: a turn's view may show what is
  // gone, so the review goes back to everything the work changed.
  review.turn = null;
  // On every (re)load: the todo list as it is now; events keep it current after.
  call("GET", api + "/todos?session=" + encodeURIComponent(session)).then(function (body) { showTodos(body.todos); }, function () {});
  reviewChanged();
});
document.addEventListener("doce:event", function (e) {
  const ev = e.detail, d = ev.data || {};
  switch (ev.type) {
    case "todo.updated":
      if (ev.current) showTodos(d.todos);
      break;
    case "file.edited":
      reviewChanged();
      break;
    case "session.status":
      if (!ev.current) break;
      if (d.status && d.status.type === "busy") { if (!busySince) busySince = Date.now(); }
      break;
    case "session.idle":
      reviewChanged();
      if (!ev.current) break;
      if (busySince && Date.now() - busySince >= LONG_TURN) mark("Done");
      busySince = 0;
      compacted(true);
      break;
    case "session.compacted":
      if (ev.current) compacted(true);
      break;
    case "session.error":
      if (ev.current) compacted(false);
      break;
    case "question.asked":
    case "permission.asked":
      if (ev.current) mark("The agent asks");
      break;
    case "pty.exited": {
      const s = terms.get(d.id);
      if (s) s.ended = true;
      break;
    }
  }
});
