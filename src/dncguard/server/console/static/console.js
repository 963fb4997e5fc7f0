// dncguard console: progress of a scrub job (polls its status; no framework, no CDN).
(function () {
  "use strict";
  var box = document.querySelector("[data-job-status]");
  if (!box) { return; }
  var url = box.getAttribute("data-job-status");
  var bar = document.getElementById("job-progress");
  var state = box.querySelector("[data-testid=job-state]");
  var done = box.querySelector("[data-testid=rows-done]");
  var text = document.getElementById("job-text");
  var counts = document.getElementById("job-counts");
  var error = document.getElementById("job-error");
  var download = document.getElementById("job-download");
  var last = "";

  function show(s) {
    var total = s.rows;
    if (typeof total === "number" && total > 0) {
      bar.max = total;
      bar.value = Math.min(s.rowsDone, total);
    } else if (s.state === "done") {
      bar.max = 1; bar.value = 1;
    }
    var line = s.state + ": " + s.rowsDone.toLocaleString("en-US") +
      (typeof total === "number" ? " of " + total.toLocaleString("en-US") : "") + " rows";
    if (line !== last) {  // aria-live: announce changes only
      state.textContent = s.state;
      done.textContent = s.rowsDone.toLocaleString("en-US");
      text.lastChild.textContent = (typeof total === "number" ? " of " + total.toLocaleString("en-US") : "") + " rows";
      last = line;
    }
    counts.textContent = Object.keys(s.counts).map(function (k) { return k + ": " + s.counts[k]; }).join(", ");
    if (s.error) { error.textContent = s.error; error.hidden = false; }
    if (s.state === "done") { download.hidden = false; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("status " + r.status); } return r.json(); })
      .then(function (s) {
        show(s);
        if (s.state === "queued" || s.state === "running") { setTimeout(poll, 400); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
}());
