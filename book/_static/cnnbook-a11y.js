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
 * - Code blocks, cell outputs and tables too wide or too tall for the page scroll: each one that does
 *   becomes a tab stop (as the theme also does) and a named region, so a keyboard user can reach it,
 *   scroll it with the arrow keys, and hear what it is (WCAG 2.1.1; axe's scrollable-region-focusable).
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

  var SCROLLABLE = [["pre", "code block"], [".cell_output > .output", "cell output"],
    [".pst-scrollable-table-container", "table"]];

  function labelScrollables() {
    SCROLLABLE.forEach(function (pair) {
      document.querySelectorAll(".bd-article " + pair[0]).forEach(function (node) {
        if (node.scrollWidth > node.clientWidth || node.scrollHeight > node.clientHeight) {
          node.tabIndex = 0;
          if (!node.hasAttribute("aria-label")) {
            node.setAttribute("role", "region");
            node.setAttribute("aria-label", "scrollable " + pair[1]);
          }
        }
      });
    });
  }

  function fix() {
    nameFromContent();
    nameColourMode();
    bibliographyItems();
    labelScrollables();
    window.addEventListener("load", labelScrollables);
    window.addEventListener("resize", labelScrollables);
    new MutationObserver(nameColourMode).observe(document.documentElement, {attributes: true, attributeFilter: ["data-mode"]});
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fix);
  } else {
    fix();
  }
}());
