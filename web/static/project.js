// Live setup progress: the server streams the progress block as server-sent events and this
// swaps it in. Without JavaScript the page refreshes itself instead (see the layout).
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var done = { ready: true, cancelled: true, deleted: true };
  var es = new EventSource(live.dataset.events);
  es.addEventListener("progress", function (e) {
    live.innerHTML = e.data;
    var status = live.querySelector("[data-status]");
    if (status && done[status.dataset.status]) es.close();
  });
  // EventSource reconnects by itself, sending the last event id so nothing is repeated.
})();

// Buttons that ask before they act.
document.addEventListener("click", function (e) {
  var b = e.target.closest("[data-confirm]");
  if (b && !window.confirm(b.dataset.confirm)) e.preventDefault();
});

// One submit per form: a second click while the first is on its way does nothing.
document.addEventListener("submit", function (e) {
  var f = e.target;
  if (f.dataset.submitting) { e.preventDefault(); return; }
  f.dataset.submitting = "1";
  var b = f.querySelector("button[type=submit]");
  if (b) { b.setAttribute("aria-busy", "true"); }
});
