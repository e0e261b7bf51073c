/* cnnbook accessibility overrides of the theme's markup (WCAG 2.1 AA, checked by tests/test_accessibility.py).
 *
 * - Buttons and toggles whose visible text is missing from their accessible name (WCAG 2.5.3, axe's
 *   label-content-name-mismatch): the search field reads "Search Ctrl+K" but is named "Search", and the
 *   "Show code cell source" toggles are named "Toggle hidden content". Their aria-label goes, so the name
 *   is the text a sighted reader sees (and a speech-input user says).
 * - The colour-mode button shows an icon titled "Light", "Dark" or "System Settings" but is named
 *   "Color mode": its name becomes "Color mode: Light" (and so on), kept in step with the mode.
 * - The bibliography (docutils' citation list) is a role="list" whose entries carry the deprecated
 *   role doc-biblioentry instead of listitem: they become list items.
 */
(function () {
  "use strict";
  var MODE_NAMES = {light: "Light", dark: "Dark", auto: "System Settings"};

  function nameFromContent() {
    document.querySelectorAll(".search-button-field[aria-label], details > summary[aria-label]").forEach(function (node) {
      node.removeAttribute("aria-label");
    });
  }

  function nameColourMode() {
    var mode = document.documentElement.dataset.mode || "auto";
    document.querySelectorAll(".theme-switch-button").forEach(function (button) {
      button.setAttribute("aria-label", "Color mode: " + (MODE_NAMES[mode] || mode));
    });
  }

  function bibliographyItems() {
    document.querySelectorAll('[role="list"] > [role="doc-biblioentry"]').forEach(function (entry) {
      entry.setAttribute("role", "listitem");
    });
  }

  function fix() {
    nameFromContent();
    nameColourMode();
    bibliographyItems();
    new MutationObserver(nameColourMode).observe(document.documentElement, {attributes: true, attributeFilter: ["data-mode"]});
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fix);
  } else {
    fix();
  }
}());
