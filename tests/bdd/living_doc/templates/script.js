// Filters and search, in the page itself: it is opened from a file or a CI artifact, without a server.
(function () {
  "use strict";
  var search = document.getElementById("search");
  var level = document.getElementById("level");
  var result = document.getElementById("result");
  var tag = document.getElementById("tag");
  var shown = document.getElementById("shown");
  var scenarios = Array.prototype.slice.call(document.querySelectorAll("article.scenario"));

  // A results holder (a scenario's level table, or an outline's example row) matches
  // when one of its levels, or the chosen one, has the chosen result.
  function matches(holder) {
    var flaky = (holder.getAttribute("data-flaky") || "").split(" ");
    return holder.getAttribute("data-results").split(" ").some(function (cell) {
      var parts = cell.split(":");
      if (level.value && parts[0] !== level.value) return false;
      if (result.value === "flaky") return flaky.indexOf(parts[0]) >= 0;
      return !result.value || parts[1] === result.value;
    });
  }

  function apply() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var count = 0;
    scenarios.forEach(function (scenario) {
      var text = scenario.textContent.toLowerCase();
      var tags = (scenario.getAttribute("data-tags") || "").split(" ");
      var visible = words.every(function (word) { return text.indexOf(word) >= 0; }) &&
        (!tag.value || tags.indexOf(tag.value) >= 0);
      var holders = scenario.querySelectorAll("[data-results]");
      var any = false;
      Array.prototype.forEach.call(holders, function (holder) {
        var ok = matches(holder);
        any = any || ok;
        if (holder.tagName === "TR") holder.hidden = !ok;
      });
      scenario.hidden = !(visible && any);
      if (!scenario.hidden) count += 1;
    });
    Array.prototype.forEach.call(document.querySelectorAll("section.feature"), function (section) {
      var inside = section.querySelectorAll("article.scenario");
      section.hidden = inside.length > 0 && section.querySelectorAll("article.scenario:not([hidden])").length === 0;
    });
    shown.textContent = count + " of " + scenarios.length + " scenarios shown";
    document.getElementById("nothing").hidden = count > 0;
  }

  // A link to a scenario the filters hide clears them.
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && (target.hidden || target.closest("[hidden]"))) {
      search.value = ""; level.value = ""; result.value = ""; tag.value = "";
      apply();
      target.scrollIntoView();
    }
  }

  [search, level, result, tag].forEach(function (control) {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  });
  window.addEventListener("hashchange", reveal);
  apply();
  reveal();
  // Checked by the gate's headless browser: the script ran to its end.
  document.body.setAttribute("data-script", "ready");
})();
