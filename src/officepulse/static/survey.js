// Progressive enhancement only: the form works without this file.
// 1. A second tap on "send" while the first is on its way must not send twice.
// 2. After a validation error, move focus to the list of problems.
"use strict";
(function () {
  var form = document.querySelector("form.survey");
  if (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        window.setTimeout(function () { button.disabled = true; }, 0);
      }
    });
  }
  var problems = document.getElementById("problems");
  if (problems) {
    problems.focus();
  }
})();
