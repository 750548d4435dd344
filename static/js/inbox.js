// Conversation page shortcuts (the list's rows use app.js's data-keys): u unread, s snooze, r reply.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (document.querySelector("[data-keys]")) return;  // a list: app.js handles its rows
    if (event.key === "r") {
      var box = document.getElementById("reply-body");
      if (box) { box.focus(); event.preventDefault(); }
      return;
    }
    var control = document.querySelector("[data-page-key='" + event.key + "']");
    if (control) { control.click(); event.preventDefault(); }
  });
})();
