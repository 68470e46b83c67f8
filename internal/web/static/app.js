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
  // A button with data-copy="ID" copies that read-only field (a join
  // token): through the clipboard API where the browser allows it, else
  // by selecting it for Ctrl+C. #copy-status says which.
  document.addEventListener("click", function (e) {
    var b = e.target && e.target.closest ? e.target.closest("button[data-copy]") : null;
    var field = b && document.getElementById(b.dataset.copy);
    if (!field) {
      return;
    }
    var status = document.getElementById("copy-status");
    function say(msg) {
      if (status) {
        status.textContent = msg;
      }
    }
    function fallback() {
      field.focus();
      field.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (err) {
        ok = false;
      }
      say(ok ? "Copied." : "Selected: press Ctrl+C to copy.");
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(function () {
        field.select();
        say("Copied.");
      }, fallback);
    } else {
      fallback();
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
