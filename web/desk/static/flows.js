// The flow editor works without this file. Where scripts run, a problem's "Line N" link also
// selects that line in the editor (the link itself jumps to the numbered copy of the draft).
"use strict";
document.addEventListener("click", function (event) {
  var link = event.target instanceof Element ? event.target.closest("a[data-line]") : null;
  var editor = document.getElementById("source");
  if (!link || !editor) return;
  var wanted = parseInt(link.getAttribute("data-line"), 10);
  var lines = editor.value.split("\n");
  if (!(wanted >= 1 && wanted <= lines.length)) return;
  event.preventDefault();
  var start = 0;
  for (var i = 0; i < wanted - 1; i++) start += lines[i].length + 1;
  editor.focus();
  editor.setSelectionRange(start, start + lines[wanted - 1].length);
  // Scroll the textarea so the selected line shows (about a third from the top).
  var lineHeight = parseFloat(window.getComputedStyle(editor).lineHeight) || 18;
  editor.scrollTop = Math.max(0, (wanted - 1) * lineHeight - editor.clientHeight / 3);
  editor.scrollIntoView({ block: "center" });
});
