// What the project page's modules (chat/, workbench.js) share.

// $ is the element with this id.
export function $(id) { return document.getElementById(id); }

// el makes an element with a class and text; text only, never HTML.
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// clone copies the first element of the <template> with this id: markup the page holds once,
// for the server's rendering and the script's alike.
export function clone(id) {
  return $(id).content.firstElementChild.cloneNode(true);
}

// call sends a JSON request and resolves with the answer's JSON, or rejects with the
// server's error ({status, code, message}).
export function call(method, path, body) {
  const opts = { method: method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  return fetch(path, opts).then(function (r) {
    return r.text().then(function (t) {
      let j = null;
      try { j = t ? JSON.parse(t) : {}; } catch (e) { j = null; }
      if (r.ok) return j || {};
      const e = (j && j.error) || {};
      const err = new Error(e.message || "The server answered " + r.status + ". Try again.");
      err.status = r.status; err.code = e.code;
      throw err;
    });
  }, function () {
    const err = new Error("doce did not answer: check your connection and try again.");
    err.status = 0;
    throw err;
  });
}

// debounce calls fn once a burst of calls has been quiet for ms.
export function debounce(fn, ms) {
  let t = null;
  return function () { clearTimeout(t); t = setTimeout(fn, ms); };
}
