// Page glue around htmx: the time a learner took per question, and an alert when a request fails.
// No build step, no framework; htmx does the swaps (see docs/decisions/0007-pages.md).
(function () {
  "use strict";

  function stamp(root) {
    var forms = root.matches && root.matches("form[data-timed]") ? [root] : [];
    if (root.querySelectorAll) forms = forms.concat(Array.from(root.querySelectorAll("form[data-timed]")));
    forms.forEach(function (f) { f.dataset.shownAt = String(performance.now()); });
  }

  // Capture phase: runs before htmx reads the form, so the value travels with the post.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f instanceof HTMLFormElement && f.dataset.shownAt && f.elements.time_taken_ms) {
      f.elements.time_taken_ms.value = String(Math.round(performance.now() - Number(f.dataset.shownAt)));
    }
  }, true);

  var alertBox = null;
  function show(message) {
    alertBox = alertBox || document.getElementById("alert");
    if (!alertBox) return;
    alertBox.textContent = message;
    alertBox.hidden = false;
  }

  document.addEventListener("htmx:responseError", function (e) {
    show("The server answered " + e.detail.xhr.status + ". Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    show("The server could not be reached. Check your connection and try again.");
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (alertBox) alertBox.hidden = true;
  });

  if (window.htmx) {
    window.htmx.onLoad(stamp);
  } else {
    document.addEventListener("DOMContentLoaded", function () { stamp(document); });
  }
})();
