// Live tail of an attempt's log: polls the tail endpoint with ?offset= and appends the
// lines it returns. The server sends them already escaped (apps/runs/ansi.py); nothing
// from the log is ever interpreted here.
(function () {
  "use strict";
  var box = document.getElementById("log");
  if (!box || box.dataset.live !== "1") { return; }
  var url = box.dataset.tailUrl;
  var offset = parseInt(box.dataset.offset, 10) || 0;
  var delay = 2000;
  var status = document.getElementById("log-live");

  function atBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  }

  function poll() {
    fetch(url + "?offset=" + offset, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        var follow = atBottom();
        if (data.html) { box.insertAdjacentHTML("beforeend", data.html); }
        offset = data.offset;
        if (follow && data.html) { window.scrollTo(0, document.body.scrollHeight); }
        if (data.finished && data.offset >= data.size) {
          if (status) { status.textContent = "Finished (" + data.state + "). Reload for the final details."; }
          return;
        }
        delay = 2000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        if (status) { status.textContent = "Live tail interrupted; retrying."; }
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
