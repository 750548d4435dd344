// Leads list: show a refused row action's reason in place, keep the row focused.
(function () {
  "use strict";
  var focusId = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var row = event.detail.target && event.detail.target.closest && event.detail.target.closest("tr[data-row]");
    if (!row) return;
    // A 400 row carries the reason: swap it like a success.
    if (event.detail.xhr.status === 400) { event.detail.shouldSwap = true; event.detail.isError = false; }
    focusId = row.id;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!focusId) return;
    var row = document.getElementById(focusId);
    focusId = null;
    if (row) row.focus();
  });
})();
