// The site's script, on every page, a module like the project page's (chat/, workbench.js). The
// Content-Security-Policy allows scripts from /static only: pages hold no inline script or
// event handler.

// Live setup progress: the server streams the progress block as server-sent events and this
// swaps it in. Without JavaScript the page refreshes itself instead (see the layout).
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  // A ready project's stream stays open: the open page keeps its workspace from idling out.
  var done = { cancelled: true, deleted: true };
  var es = new EventSource(live.dataset.events);
  es.addEventListener("progress", function (e) {
    live.innerHTML = e.data;
    var status = live.querySelector("[data-status]");
    if (status && done[status.dataset.status]) es.close();
    // The conversation (chat/main.js) starts once the setup is ready.
    if (status && status.dataset.status === "ready") document.dispatchEvent(new Event("doce:ready"));
  });
  // EventSource reconnects by itself, sending the last event id so nothing is repeated.
})();

// A field shown to be copied (a new API token) is selected whole when it takes focus.
document.addEventListener("focusin", function (e) {
  if (e.target.matches && e.target.matches("[data-select-on-focus]")) e.target.select();
});

// Buttons that ask before they act.
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-confirm]");
  if (b && !window.confirm(b.dataset.confirm)) e.preventDefault();
});

// One submit per form: a second click while the first is on its way does nothing.
document.addEventListener("submit", function (e) {
  var f = e.target;
  if (f.method === "get") return; // a download or a search may be asked for again
  if (f.dataset.submitting) { e.preventDefault(); return; }
  f.dataset.submitting = "1";
  var b = f.querySelector("button[type=submit]");
  if (b) { b.setAttribute("aria-busy", "true"); }
});

// The connect form shows the fields of the chosen provider's way of connecting. Without
// JavaScript every field shows, each section labelled.
(function () {
  var select = document.getElementById("providerId");
  var form = document.getElementById("connect-form");
  if (!select || !form) return;
  function show() {
    var opt = select.options[select.selectedIndex];
    form.querySelectorAll("[data-auth]").forEach(function (el) {
      el.hidden = el.dataset.auth !== opt.dataset.auth;
    });
    form.querySelectorAll("fieldset[data-custom]").forEach(function (el) {
      el.hidden = opt.dataset.custom !== "true";
    });
  }
  select.addEventListener("change", show);
  show();
})();

// A sign-in waiting for the user: ask the status endpoint until it ends, then show the end.
(function () {
  var login = document.getElementById("login");
  if (!login || login.dataset.waiting !== "true" || !window.fetch) return;
  var timer = setInterval(function () {
    fetch(login.dataset.status, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        var state = body.login && body.login.state;
        if (state && state !== "starting" && state !== "waiting-for-user") {
          clearInterval(timer);
          window.location.reload();
        }
      })
      .catch(function () {});
  }, 1500);
})();
