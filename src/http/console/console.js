// Live updates: follows the event stream from the cursor the page was rendered at and, on
// each event, fetches this page again and swaps in its <main>. Without this script the
// pages are the same, only static.
"use strict";
(function () {
  var main = document.getElementById("live");
  if (!main || !window.EventSource) return;
  var after = main.getAttribute("data-events-after");
  var stream = new EventSource("/v1/events?after=" + encodeURIComponent(after));
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").getElementById("live");
        var current = document.getElementById("live");
        if (fresh && current) current.replaceChildren.apply(current, Array.from(fresh.childNodes));
      })
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  ["transition", "audit", "notification"].forEach(function (kind) {
    stream.addEventListener(kind, refresh);
  });
})();
