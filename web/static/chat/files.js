// The Files tab: the project's tree and a viewer for one file. What comes from the workspace
// (names, contents) is put in the page as text only.
import { $, el, call, debounce } from "../common.js";
import { api } from "./page.js";

export const files = {
  box: $("files"), viewer: $("viewer"), open: null, shown: new Map(),
  // list shows the folder dir inside container ul. An unchanged folder keeps its nodes, so a
  // refresh never takes away the button someone is clicking, their focus or open folders.
  list: function (dir, ul) {
    return call("GET", api + "/files?path=" + encodeURIComponent(dir)).then(function (body) {
      const entries = (body.entries || []).slice().sort(function (a, b) {
        return (a.type === b.type ? 0 : a.type === "directory" ? -1 : 1) || a.name.localeCompare(b.name);
      });
      const sig = JSON.stringify(entries.map(function (f) { return [f.name, f.type, !!f.ignored]; }));
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
    const li = el("li");
    const b = el("button", "link file-entry" + (f.ignored ? " ignored" : ""), f.name + (f.type === "directory" ? "/" : ""));
    b.type = "button";
    b.dataset.path = f.path;
    li.appendChild(b);
    if (f.type === "directory") {
      b.setAttribute("aria-expanded", "false");
      const sub = el("ul"); sub.hidden = true; li.appendChild(sub);
      b.addEventListener("click", function () {
        const open = b.getAttribute("aria-expanded") !== "true";
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
    const title = $("viewer-path"), pre = $("viewer-content");
    files.viewer.hidden = false;
    title.textContent = path;
    return call("GET", api + "/files/content?path=" + encodeURIComponent(path)).then(function (body) {
      const f = body.file || {};
      pre.textContent = f.type === "text" ? f.content : "This file is not text" + (f.mimeType ? " (" + f.mimeType + ")" : "") + ": Download the project to get it.";
      if (f.truncated) pre.appendChild(el("span", "note", "\n… cut short: Download the project for the whole file."));
      if (focus) title.focus();
    }, function (err) { pre.textContent = err.message; });
  },
  refresh: function () {
    const top = files.box.querySelector("ul") || files.box.appendChild(el("ul", "tree"));
    files.shown.forEach(function (ul, dir) { if (dir !== "") files.list(dir, ul); });
    return files.list("", top);
  },
  // edited refreshes what shows a file the agent changed, once for a burst of edits.
  edited: debounce(function () {
    files.refresh();
    if (files.open) files.view(files.open, false);
  }, 300)
};

export function initFiles() {
  $("files-refresh").addEventListener("click", function () { files.refresh(); });
}
