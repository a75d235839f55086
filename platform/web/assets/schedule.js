// Keeps the staff schedule current: polls the change stamp and, when it moves, fetches this
// same page and swaps the schedule in place (no reload, so focus and scroll stay put).
(function () {
  "use strict";
  var POLL_MS = 2000;
  function current() {
    var el = document.getElementById("schedule");
    return el ? el.getAttribute("data-stamp") : null;
  }
  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("schedule");
        var old = document.getElementById("schedule");
        if (fresh && old) old.replaceWith(fresh);
      })
      .catch(function () {});
  }
  function poll() {
    fetch("/staff/schedule/stamp", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && String(body.stamp) !== current()) refresh();
      })
      .catch(function () {})
      .then(function () { window.setTimeout(poll, POLL_MS); });
  }
  window.setTimeout(poll, POLL_MS);
})();
