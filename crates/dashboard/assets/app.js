// leadwire dashboard: the one script. Everything works without it; it only keeps the activity
// log live (server-sent events) and announces new entries to screen readers.
"use strict";
(function () {
  var live = document.querySelector("[data-live-src]");
  if (!live || !window.EventSource) return;
  var rows = document.getElementById("activity-rows");
  var deliveries = document.getElementById("delivery-rows");
  var announce = document.getElementById("live-announce");
  var empty = document.getElementById("activity-empty");
  var source = new EventSource(live.getAttribute("data-live-src"));
  source.addEventListener("entry", function (e) {
    if (!rows) return;
    rows.insertAdjacentHTML("afterbegin", e.data);
    var row = rows.firstElementChild;
    if (row) row.classList.add("new");
    if (empty) empty.hidden = true;
    if (announce && row) announce.textContent = row.textContent.replace(/\s+/g, " ").trim();
  });
  source.addEventListener("deliveries", function (e) {
    if (deliveries) deliveries.innerHTML = e.data;
  });
})();

// The compose screen's live preview: once a preview is shown, every edit renders it again (the
// same form posted with action=preview; the server answers the whole page and the preview
// section is taken from it). Without this script the Preview button does the same.
(function () {
  var form = document.querySelector("form.compose[data-live-preview]");
  if (!form || !window.fetch || !window.DOMParser) return;
  var timer = null;
  var running = false;
  function refresh() {
    var current = document.getElementById("preview");
    if (!current || running) return;
    running = true;
    var data = new URLSearchParams(new FormData(form));
    data.set("action", "preview");
    // Not form.action: the buttons named "action" shadow that property.
    fetch(form.getAttribute("action"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: data.toString(),
    })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("preview");
        var now = document.getElementById("preview");
        if (fresh && now) now.innerHTML = fresh.innerHTML;
      })
      .catch(function () {})
      .then(function () { running = false; });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 500);
  });
})();
