// The desk works without this file; it only smooths two things where scripts run.
// 1. A form marked data-once is sent once: its buttons are disabled after the first submit
//    (the server refuses a second one anyway, with 409, since the item's version has moved).
// 2. A form marked data-confirm asks before doing something hard to undo.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  if (form.hasAttribute("data-once")) {
    if (form.getAttribute("data-sent") === "1") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-sent", "1");
    form.querySelectorAll("button[type=submit]").forEach(function (button) {
      button.setAttribute("aria-busy", "true");
    });
  }
});
