// Progressive enhancement only: every page works without this file.
// After a change, move focus to the confirmation so a screen reader hears it and the page
// scrolls to it; after a rejected field, focus that field.
(function () {
  "use strict";
  var target = document.querySelector("[aria-invalid='true']") || document.getElementById("flash");
  if (target) {
    if (!target.hasAttribute("tabindex") && target.tagName !== "INPUT") {
      target.setAttribute("tabindex", "-1");
    }
    target.focus();
  }
})();
