// A document's page while it is being prepared: every second and a half it fetches this same
// page and swaps in only the status region, until the document is ready or has failed. Focus
// is never moved; screen readers hear the new status once, politely.
(function () {
  "use strict";
  var POLL_MS = 1500;
  function region(doc) { return doc.getElementById("document-status"); }
  function poll() {
    // X-Portal-Refresh: the page updating itself, which must not keep the session alive.
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html", "X-Portal-Refresh": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        var old = region(document);
        if (!html || !old) return true;
        var fresh = region(new DOMParser().parseFromString(html, "text/html"));
        if (!fresh) return true;
        if (fresh.getAttribute("data-status") !== old.getAttribute("data-status")) {
          old.replaceWith(fresh);
          var live = document.getElementById("document-live");
          var tag = fresh.querySelector(".tag");
          if (live && tag) live.textContent = "Status: " + tag.textContent + ".";
        }
        return fresh.getAttribute("data-pending") === "true";
      })
      .catch(function () { return true; })
      .then(function (again) { if (again) window.setTimeout(poll, POLL_MS); });
  }
  window.setTimeout(poll, POLL_MS);
})();
