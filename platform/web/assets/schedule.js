// Keeps the staff schedule current: polls the change stamp and, when it moves, fetches this
// same page and swaps in only the list of visits. The filters above it are never touched, so a
// half-changed filter keeps its value. Focus is never moved: if it was on something in the
// list, the same control (by its data-focus key) takes it back, and if that control is gone
// the list itself holds focus. Screen readers hear a short polite note.
(function () {
  "use strict";
  var POLL_MS = 2000;
  function current() {
    var el = document.getElementById("schedule");
    return el ? el.getAttribute("data-stamp") : null;
  }
  function refresh() {
    // X-Portal-Refresh: this is the page updating itself, which must not keep the session alive.
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html", "X-Portal-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("schedule");
        var old = document.getElementById("schedule");
        if (!fresh || !old) return;
        var active = document.activeElement;
        var inside = active && old.contains(active);
        var key = inside ? active.getAttribute("data-focus") : null;
        old.replaceWith(fresh);
        if (inside) {
          var again = key ? fresh.querySelector('[data-focus="' + key + '"]') : null;
          (again || fresh).focus({ preventScroll: true });
        }
        var live = document.getElementById("schedule-live");
        if (live) live.textContent = "The schedule was updated.";
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
