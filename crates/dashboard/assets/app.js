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
