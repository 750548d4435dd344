// Saved replies: "Insert" fetches the reply filled in for this person and puts it
// in the editor at the cursor.  A placeholder with no value stays in the text and
// is named in a warning (the server refuses to send a message that still has one).
(function () {
  "use strict";
  if (window.rediskaSavedReplies) return;  // the picker may be loaded more than once
  window.rediskaSavedReplies = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-saved-reply-insert]");
    if (!button) return;
    var picker = button.closest("[data-saved-replies]");
    var select = picker.querySelector("[data-saved-reply-select]");
    var warning = picker.querySelector("[data-saved-reply-warning]");
    var editor = document.getElementById(picker.getAttribute("data-target"));
    if (!select || !editor) return;
    button.disabled = true;
    fetch(select.value, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json().then(function (data) { return [response.ok, data]; }); })
      .then(function (result) {
        var ok = result[0], data = result[1];
        if (!ok) { warning.textContent = data.error || "The saved reply could not be filled in."; warning.hidden = false; return; }
        var start = editor.selectionStart || 0, end = editor.selectionEnd || 0;
        editor.value = editor.value.slice(0, start) + data.text + editor.value.slice(end);
        editor.focus();
        editor.selectionStart = editor.selectionEnd = start + data.text.length;
        warning.textContent = data.warning || "";
        warning.hidden = !data.warning;
      })
      .catch(function () { warning.textContent = "The saved reply could not be loaded; try again."; warning.hidden = false; })
      .then(function () { button.disabled = false; });
  });
})();
