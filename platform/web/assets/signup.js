// Live availability check for the clinic's web address on the sign-up form. The form works
// without it; this only tells people sooner.
(function () {
  var input = document.getElementById("slug");
  var status = document.getElementById("slug-status");
  var preview = document.getElementById("slug-preview");
  if (!input || !status) return;
  var timer = null;
  var seq = 0;
  function check() {
    var slug = input.value.trim().toLowerCase();
    if (preview) preview.textContent = slug || "your-name";
    if (!slug) { status.textContent = ""; return; }
    var mine = ++seq;
    fetch(input.dataset.check + "?slug=" + encodeURIComponent(slug), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (mine !== seq) return;
        status.textContent = body.available ? "✓ " + slug + " is available" : "✗ " + body.reason;
        status.className = body.available ? "hint ok" : "hint field-error";
      })
      .catch(function () { if (mine === seq) status.textContent = ""; });
  }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, 250);
  });
})();

// The "setting up your portal" page: asks for the request's status every second and reloads
// when it changes, so the person sees the result without pressing anything. Without script,
// the "Check again" link does the same.
(function () {
  var waiting = document.querySelector("[data-signup-request]");
  if (!waiting) return;
  var url = "/api/v1/signup/requests/" + encodeURIComponent(waiting.dataset.signupRequest);
  function poll() {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.status && body.status !== "in_progress") { window.location.reload(); return; }
        setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
