// Lobby pages: htmx sends the session's CSRF token on every request, and
// buttons with data-confirm ask before they act. No inline script anywhere
// (the Content-Security-Policy forbids it).
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  }
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });
  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    var msg = (b && b.dataset.confirm) || e.target.dataset.confirm;
    if (msg && !window.confirm(msg)) {
      e.preventDefault();
    }
  });
  // A select or checkbox marked data-autosubmit submits its form (filters).
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t && t.dataset && t.dataset.autosubmit !== undefined && t.form) {
      t.form.requestSubmit();
    }
  });
})();
