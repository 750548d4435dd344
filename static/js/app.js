// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Disable a submit button while its form is in flight (double-click guard;
  // the server-side idempotency key is the real protection).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("[data-once]")) {
      // A disabled button is left out of a plain post: keep the pressed one's name=value
      // (e.g. action=send) in a hidden field.  htmx has read the values already.
      var pressed = event.submitter;
      if (!event.defaultPrevented && pressed && pressed.name) {
        var field = form.querySelector("input[data-pressed]") || document.createElement("input");
        field.type = "hidden";
        field.setAttribute("data-pressed", "");
        field.name = pressed.name;
        field.value = pressed.value;
        form.appendChild(field);
      }
      // Only buttons enabled now are marked: one the server rendered disabled stays disabled.
      form.querySelectorAll("button[type=submit]:not([disabled])").forEach(function (b) {
        b.disabled = true;
        b.setAttribute("data-once-disabled", "");
      });
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt.closest && event.detail.elt.closest("form[data-once]");
    if (form) form.querySelectorAll("button[data-once-disabled]").forEach(function (b) {
      b.disabled = false;
      b.removeAttribute("data-once-disabled");
    });
  });
  // Keyboard shortcuts on lists marked data-keys: j/k move, Enter opens.
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    var list = document.querySelector("[data-keys]");
    if (!list) return;
    var rows = Array.prototype.slice.call(list.querySelectorAll("[data-row]"));
    if (!rows.length) return;
    var current = rows.indexOf(document.activeElement.closest("[data-row]"));
    if (event.key === "j" || event.key === "k") {
      var next = event.key === "j" ? Math.min(rows.length - 1, current + 1) : Math.max(0, current - 1);
      rows[next].focus();
      event.preventDefault();
    } else if (current >= 0) {
      var action = rows[current].querySelector("[data-key='" + event.key + "']");
      if (action) { action.click(); event.preventDefault(); }
    }
  });
})();
