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

  var stopped = document.getElementById("job-stopped");

  // A refusal that waiting will not cure: the session expired or ended (401, or a redirect
  // to the sign-in page), the key may no longer see the job (403), or it is gone (404).
  // Polling stops and the page says what to do; other failures are tried again.
  function stop(why, signIn) {
    stopped.querySelector("[data-why]").textContent = why;
    stopped.querySelector("[data-sign-in]").hidden = !signIn;
    stopped.hidden = false;
    box.setAttribute("data-polling", "stopped");
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401 || (r.redirected && r.url.indexOf("/console/signin") !== -1)) {
          stop("Your session has expired: this page no longer shows the job's progress.", true);
          return null;
        }
        if (r.status === 403) {
          stop("This session may no longer see this job: it needs a key with the jobs scope.", true);
          return null;
        }
        if (r.status === 404) {
          stop("This job can no longer be found.", false);
          return null;
        }
        if (!r.ok) { throw new Error("status " + r.status); }
        return r.json();
      })
      .then(function (s) {
        if (s === null) { return; }
        show(s);
        if (s.state === "queued" || s.state === "running") { setTimeout(poll, 400); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  poll();
}());
