// The project page's conversation with the agent, its files and its sessions. The server
// renders the page; these modules read the conversation, follow it live and send what the
// user does:
//   page.js      the project's API, the session shown, the status line, the announcer
//   render.js    messages and their parts (text, thinking, tool calls, edits)
//   requests.js  permissions and questions the agent asks
//   stream.js    reading the conversation and following its events
//   revert.js    undo and restore
//   composer.js  sending a message, Stop
//   sessions.js  the session and model pickers
//   files.js     the Files tab's tree and viewer
import { root, state, setStatus } from "./page.js";
import { load, connect } from "./stream.js";
import { initRestore } from "./revert.js";
import { initComposer } from "./composer.js";
import { sessions, initSessions, loadModels } from "./sessions.js";
import { files, initFiles } from "./files.js";

initRestore();
initComposer();
initSessions();
initFiles();

function follow() {
  connect();
  loadModels();
  files.refresh();
}

let begun = false;
function start() {
  if (begun) return;
  begun = true;
  root.hidden = false;
  setStatus("Connecting to the workspace…");
  sessions.load().then(load).then(follow, function () {
    // load retries by itself while the workspace starts; follow once it answers.
    const wait = setInterval(function () { if (state.started) { clearInterval(wait); follow(); } }, 500);
  });
}

// A project still being set up shows the workspace once project.js hears it is ready.
if (!root.hidden) start();
else document.addEventListener("doce:ready", start);
